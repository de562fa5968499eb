#pragma once
// Every SQL statement the client sends, one function each, parameterised by the schema name
// (already validated by validate_schema_name). Each names the pg-boss plans.ts function whose
// semantics it follows; the statements are written from pgboss-protocol.md, not copied.
#include <string>
#include <string_view>

namespace yw::queue::sql {

// plans.ts getVersion: the schema version row. $1 unused.
std::string get_version(std::string_view schema);
// to_regclass('<schema>.version'): NULL when the schema is not installed.
std::string version_table_exists(std::string_view schema);

}  // namespace yw::queue::sql
