// libdlock.so is linked from the static libraries' objects (--whole-archive, see
// CMakeLists.txt); CMake needs the target to have a source of its own.
