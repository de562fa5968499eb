#include "cli/cli.hpp"

int main(int argc, char** argv) {
  return yw::worker::cli::main(argc, argv);
}
