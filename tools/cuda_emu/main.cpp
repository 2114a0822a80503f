// Runs the emulator tests: each csrc/cuda/*.cu compiled for the CPU emulator (emu.h) and driven
// through its op wrappers, compared with torch's CPU results.
#include <cstdio>
#include <cstring>

#include <ATen/ATen.h>

#include "check.h"

void test_elementwise();
void test_reduce();
void test_mse_loss();
void test_gemm();
void test_linear();
void test_mlp();
void test_optim();

int main(int argc, char** argv) {
  struct Suite {
    const char* name;
    void (*run)();
  } suites[] = {
      {"elementwise", test_elementwise}, {"reduce", test_reduce}, {"mse_loss", test_mse_loss}, {"gemm", test_gemm},
      {"linear", test_linear},           {"mlp", test_mlp},       {"optim", test_optim}};
  at::manual_seed(0);
  for (const Suite& s : suites) {
    bool selected = argc == 1;
    for (int i = 1; i < argc; ++i) selected |= std::strcmp(argv[i], s.name) == 0;
    if (!selected) continue;
    const int before = emu_test::g_failures, checks = emu_test::g_checks;
    s.run();
    std::printf("%-12s %5d checks, %d failures\n", s.name, emu_test::g_checks - checks, emu_test::g_failures - before);
    std::fflush(stdout);
  }
  std::printf("%s: %d checks, %d failures\n", emu_test::g_failures ? "FAILED" : "OK", emu_test::g_checks,
              emu_test::g_failures);
  return emu_test::g_failures ? 1 : 0;
}
