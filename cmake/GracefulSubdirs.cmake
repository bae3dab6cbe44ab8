# graceful_add_subdirs(): add_subdirectory() for every folder beside the calling
# CMakeLists.txt that has its own CMakeLists.txt (apps/, examples/, tests/programs/: one
# program per folder), so a new program needs no edit of its parent.
function(graceful_add_subdirs)
  file(GLOB dirs LIST_DIRECTORIES true CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*)
  foreach(d IN LISTS dirs)
    if(IS_DIRECTORY ${d} AND EXISTS ${d}/CMakeLists.txt)
      add_subdirectory(${d})
    endif()
  endforeach()
endfunction()
