#include "src/route/regex.h"

#include <re2/re2.h>

namespace egw::route {
namespace {

// Longer bounds reject more texts but cost more to compare; 64 bytes covers
// the literal part of typical path and field patterns.
constexpr int kRangeBytes = 64;

bool re2_full_match(std::string_view text, const re2::RE2& re) {
  return re2::RE2::FullMatch(re2::StringPiece(text.data(), text.size()), re);
}

}  // namespace

Regex::Regex() = default;
Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

std::expected<Regex, std::string> Regex::compile(std::string_view pattern) {
  re2::RE2::Options options;
  options.set_encoding(re2::RE2::Options::EncodingLatin1);
  options.set_never_capture(true);  // only "does it match" is asked
  options.set_log_errors(false);    // the caller reports the error
  auto re =
      std::make_unique<const re2::RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!re->ok()) return std::unexpected(re->error());
  Regex r;
  // RE2 returns false (and no bound) when it cannot bound the matches, for
  // instance for a pattern that starts with ".*"; an empty max would mean
  // "no upper bound", which RE2 reports as false too.
  if (!re->PossibleMatchRange(&r.min_, &r.max_, kRangeBytes) || r.max_.empty()) {
    r.min_.clear();
    r.max_.clear();
  }
  // Builds the DFA and the states along the smallest match now rather than
  // on the first request.
  (void)re2_full_match("", *re);
  (void)re2_full_match("/", *re);
  (void)re2_full_match(r.min_, *re);
  r.re_ = std::move(re);
  return r;
}

bool Regex::full_match(std::string_view text) const {
  if (!max_.empty() && (text < std::string_view(min_) || text > std::string_view(max_))) {
    return false;
  }
  return re2_full_match(text, *re_);
}

const std::string& Regex::pattern() const {
  return re_->pattern();
}

}  // namespace egw::route
