// Result<T> and Error: the error vocabulary of the data path (no exceptions).
#pragma once

#include <cerrno>
#include <expected>
#include <string>

namespace egw {

// An error from a system call or a library, with a static description of the
// operation that failed. `code` is a positive errno value, or 0 when the error
// is not a system error (then `what` says everything).
struct Error {
  int code = 0;
  const char* what = "";

  // "what: strerror(code)", or just "what" when code is 0.
  std::string message() const;
};

template <class T>
using Result = std::expected<T, Error>;
using Status = Result<void>;

// Builds the unexpected value for a Result from an errno value.
inline std::unexpected<Error> fail(int code, const char* what) {
  return std::unexpected<Error>(Error{code, what});
}
// Builds the unexpected value from the current errno.
inline std::unexpected<Error> fail_errno(const char* what) {
  return fail(errno, what);
}
// Builds the unexpected value from a negative result as returned by io_uring
// and liburing (-errno).
inline std::unexpected<Error> fail_res(int res, const char* what) {
  return fail(-res, what);
}

}  // namespace egw
