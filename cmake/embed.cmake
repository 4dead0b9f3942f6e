# Turns the engine's Lua sources into one C file: halo_embedded[] =
# {name, source, size}, each named by its path under ROOT without .lua
# ("mod/docker"), which is also how error messages name it: [halo mod/docker]:12.
string(REPLACE "|" ";" SOURCES "${SOURCES}")
set(body "#include <stddef.h>\n#include \"core/embedded.h\"\n")
set(table "")
foreach(src ${SOURCES})
  file(RELATIVE_PATH rel ${ROOT} ${src})
  string(REGEX REPLACE "\\.lua$" "" name "${rel}")
  string(MAKE_C_IDENTIFIER "${name}" ident)
  file(READ ${src} hex HEX)
  string(LENGTH "${hex}" hexlen)
  math(EXPR size "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND body "static const char src_${ident}[] = {${bytes}0};\n")
  string(APPEND table "  {\"${name}\", src_${ident}, ${size}},\n")
endforeach()
string(APPEND body "const halo_embedded_file halo_embedded[] = {\n${table}  {NULL, NULL, 0}\n};\n")
file(WRITE ${OUT} "${body}")
