# Read by CMake right after llama.cpp's own project() call (CMAKE_PROJECT_llama.cpp_INCLUDE, set by
# scripts/llama_build_flags.sh). llama-cpp-python forces LLAMA_BUILD_COMMON ON as a cache entry, yet
# its Python package loads only libllama and libggml*: libllama-common (command-line parsing, chat
# parsers, an HTTP client; a 4.8 MB library) was compiled and then left unused in site-packages/lib.
# A normal variable in llama.cpp's directory scope wins over the cache entry, so it is not built.
set(LLAMA_BUILD_COMMON OFF)
