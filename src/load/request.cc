#include "src/load/request.h"

#include "proto/h1/encoder.h"

namespace egw::load {

std::expected<std::string, std::string> build_request(const Options& o) {
  bool has_host = false, has_connection = false;
  size_t cap = 256 + o.target.path.size() + o.target.authority.size() + o.method.size();
  for (const auto& [name, value] : o.headers) {
    has_host |= proto::h1::iequals(name, "host");
    has_connection |= proto::h1::iequals(name, "connection");
    cap += name.size() + value.size() + 4;
  }
  std::string head(cap, '\0');
  proto::h1::HeadWriter w(head.data(), head.size());
  w.request_line(o.method, o.target.path, 1);
  if (!has_host) w.header("Host", o.target.authority);
  for (const auto& [name, value] : o.headers)
    w.header(name, value);
  const bool body_method = o.method == "POST" || o.method == "PUT" || o.method == "PATCH";
  if (o.body_size > 0 || body_method) w.header("Content-Length", o.body_size);
  if (o.new_connection_per_request && !has_connection) w.header("Connection", "close");
  if (!w.end()) return std::unexpected(std::string("the request head is not valid HTTP/1.1"));
  std::string out(w.view());
  out.append(o.body_size, 'x');
  return out;
}

}  // namespace egw::load
