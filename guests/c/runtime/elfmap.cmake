# elfmap.cmake - write the symbol map of a C guest in the format of NASM's
# map files, which the tests parse with sscanf(" %llx %llx %s"):
#
#   "  REAL  VIRTUAL  NAME"   one line per defined symbol, hex addresses
#
# C guests are linked with virtual = physical addresses (link32.ld,
# link64.ld), so both columns are the same.
#
# cmake -DNM=nm -DELF=guest.elf -DMAP=guest.map [-DSOURCE=guest.c] -P elfmap.cmake
foreach(var NM ELF MAP)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "elfmap.cmake: -D${var}=... is required")
  endif()
endforeach()
execute_process(COMMAND ${NM} --defined-only --numeric-sort ${ELF}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "elfmap.cmake: ${NM} ${ELF} failed: ${err}")
endif()
set(text "\n- ELF symbol map (nm) --------------------------------------------------------\n\n")
string(APPEND text "Source file:  ${SOURCE}\nOutput file:  ${ELF}\n\n")
string(APPEND text "-- Symbols --------------------------------------------------------------------\n\n")
string(APPEND text "Real              Virtual           Name\n")
string(REPLACE "\n" ";" lines "${out}")
foreach(line IN LISTS lines)
  # "ADDRESS TYPE NAME"
  if(line MATCHES "^([0-9a-fA-F]+) [A-Za-z] ([^ ]+)$")
    set(addr ${CMAKE_MATCH_1})
    set(name ${CMAKE_MATCH_2})
    string(TOUPPER "${addr}" addr)
    string(APPEND text "  ${addr}  ${addr}  ${name}\n")
  endif()
endforeach()
file(WRITE ${MAP}.tmp "${text}")
file(RENAME ${MAP}.tmp ${MAP})
