// Regex: a compiled RE2 pattern for routing, asked only "does the whole text
// match?".
//
// Patterns are RE2 syntax in Latin-1 mode, so a pattern and a text are bytes:
// HTTP field values are octets (obs-text included) and must not fail to match
// because they are not UTF-8. '.' matches one byte; a non-ASCII literal in a
// pattern matches its UTF-8 bytes in sequence, but in a character class it
// would be one byte per class member, so do not put one there.
//
// Cost: an RE2 call costs some 40-90 ns even on a short text, so compile()
// also asks RE2 for the range [min, max] that every match lies in, and
// full_match() rejects a text outside it with two compares ("curl/.*"
// rejects "Mozilla/5.0 ..." without running RE2).
//
// Allocation: compile() allocates and runs the pattern a few times, so that
// RE2 builds its lazy DFA and start states then. full_match() does not
// allocate, except that RE2 allocates when a match reaches a DFA state that no
// earlier match reached, or after its state cache filled and was flushed:
// rare after warm-up, and bounded by RE2's memory budget (8 MiB per pattern).
//
// Threads: full_match() is const and safe from several threads, but RE2
// guards its DFA cache with a reader-writer lock, so threads sharing one
// Regex write one shared cache line per call. Give each worker its own.
#pragma once

#include <expected>
#include <memory>
#include <string>
#include <string_view>

namespace re2 {
class RE2;
}

namespace egw::route {

class Regex {
 public:
  // RE2's message on a syntax error ("missing ): (a").
  static std::expected<Regex, std::string> compile(std::string_view pattern);

  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // True when `text` as a whole matches (an anchored full match).
  bool full_match(std::string_view text) const;

  const std::string& pattern() const;

 private:
  Regex();

  std::unique_ptr<const re2::RE2> re_;
  // Every full match m has min_ <= m <= max_ (bytes compared unsigned);
  // both empty when RE2 could not bound the matches.
  std::string min_;
  std::string max_;
};

}  // namespace egw::route
