#include "cli/cli.hpp"

#if defined(__SANITIZE_ADDRESS__)
// LeakSanitizer, in sanitizer builds only. libpqxx 6.4 (Debian 12) leaks libpq's error result
// when a connection breaks while a statement runs: connection_base::make_result asks the dead
// connection for its client encoding, which throws, before the pqxx::result owns the PGresult.
// A pooler restart under load does that (PgbouncerTest); the worker itself holds every result it
// gets in a pqxx::result. libpqxx 7 builds the result first.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:pqxx::connection_base::exec_params\n";
}
#endif

int main(int argc, char** argv) {
  return yw::worker::cli::main(argc, argv);
}
