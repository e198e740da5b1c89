// Loads and validates a TOML configuration file into a Config snapshot.
//
// Every problem is reported, not just the first, each as
// "FILE:LINE:COLUMN: what is wrong (what was expected)". Nothing partial is
// returned: either a complete, valid Config or the list of errors.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "src/config/config.h"

namespace egw::config {

struct ConfigError {
  std::string file;
  SourceLoc loc;
  std::string message;
  // "file:line:column: message" (or "file: message" without a location).
  std::string to_string() const;
};

struct LoadResult {
  ConfigPtr config;  // null when errors is non-empty
  std::vector<ConfigError> errors;
};

LoadResult load_file(const std::string& path);
// Parses TOML text; `path` is used in messages only.
LoadResult load_string(std::string_view text, const std::string& path = "<string>");

// The example configuration generated from the defaults table: every key
// with its default and a one-line description (config/example.toml).
std::string example_config();

}  // namespace egw::config
