# How llama-cpp-python is compiled from source (it is published as source only). Sourced by
# scripts/setup.sh and scripts/wheelhouse.sh, and read by benchmarks/bench_first_run.py.
#   -DGGML_NATIVE=OFF  a portable AVX2 binary (the default -march=native one can crash on another CPU)
#   -DLLAVA_BUILD=OFF  no libmtmd (the multimodal library: CLIP image and audio encoders). The app runs
#                      text models only and never imports llama_cpp.mtmd_cpp; libllama and libggml,
#                      which it loads, are built exactly as before.
#   scripts/llama_text_only.cmake  no libllama-common either (see that file): nothing loads it.
#   examples, tests, tools and the server are off as well (llama.cpp already leaves them out when it
#   is built inside another project; said here so that a newer pin cannot bring them back silently).
# CMAKE_ARGS set by the caller replaces all of this, as before. The build uses the Ninja generator
# (scikit-build-core's default when ninja is on PATH or installable) and every core.
if [ -z "${CMAKE_ARGS:-}" ]; then
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF"
  CMAKE_ARGS="$CMAKE_ARGS -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"
  CMAKE_ARGS="$CMAKE_ARGS -DCMAKE_PROJECT_llama.cpp_INCLUDE='$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/llama_text_only.cmake'"
fi
CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}
export CMAKE_ARGS CMAKE_BUILD_PARALLEL_LEVEL
