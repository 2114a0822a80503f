// The machine's floating-point peak, measured: what `python -m pykernels bench --peak` compares
// the kernels against.
#pragma once

namespace pykernels {
namespace cpu {

struct FmaPeak {
  double gflops;    // float32 multiply-adds per second, counted as 2 flops each, over all threads
  const char* isa;  // the instruction set measured: the one the GEMM microkernel uses
};

// Runs independent FMA chains on every torch thread for about `seconds`, best of three.
FmaPeak measure_fma_peak(double seconds);

}  // namespace cpu
}  // namespace pykernels
