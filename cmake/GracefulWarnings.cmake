# graceful_warnings(target): the project's warning set, errors in CI (GRACEFUL_WERROR=ON).
function(graceful_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow=local)
  if(GRACEFUL_SANITIZE MATCHES "thread")
    # GCC 12 warns (-Wtsan) that TSan does not model std::atomic_thread_fence, which Asio's
    # handler invocation uses; the fence only orders what Asio's own mutexes already order.
    target_compile_options(${target} PRIVATE -Wno-tsan)
  endif()
  if(GRACEFUL_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
