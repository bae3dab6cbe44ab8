# graceful_warnings(target): the project's warning set, errors in CI (GRACEFUL_WERROR=ON).
function(graceful_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow=local)
  if(GRACEFUL_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
