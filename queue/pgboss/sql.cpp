#include "pgboss/sql.hpp"

#include <fmt/format.h>

namespace yw::queue::sql {

std::string get_version(std::string_view schema) {
  return fmt::format("SELECT version FROM {}.version", schema);
}

std::string version_table_exists(std::string_view schema) {
  return fmt::format("SELECT to_regclass('{}.version') IS NOT NULL", schema);
}

}  // namespace yw::queue::sql
