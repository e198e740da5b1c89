// Message digests from wolfCrypt, for protocol needs outside TLS itself
// (the WebSocket handshake's Sec-WebSocket-Accept).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace egw::tls {

std::array<uint8_t, 20> sha1(std::string_view data);

// RFC 6455 §4.2.2: base64(SHA-1(key + the protocol's GUID)).
std::string websocket_accept(std::string_view key);

// Standard base64 with padding (RFC 4648 §4).
std::string base64(const uint8_t* data, size_t len);

}  // namespace egw::tls
