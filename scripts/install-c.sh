#!/usr/bin/env bash
# Installs uniloop's C library under PREFIX:
#
#   PREFIX/include/uniloop.h, PREFIX/include/async/*.h
#   LIBDIR/libuniloop.a
#   LIBDIR/libuniloop.so.MAJOR.MINOR.PATCH (SONAME libuniloop.so.MAJOR),
#         libuniloop.so.MAJOR -> it, libuniloop.so -> libuniloop.so.MAJOR
#   LIBDIR/pkgconfig/uniloop.pc          pkg-config: shared, or --static
#   LIBDIR/pkgconfig/uniloop-static.pc   pkg-config: always libuniloop.a
#   LIBDIR/cmake/uniloop/uniloopConfig.cmake, uniloopConfigVersion.cmake
#         find_package(uniloop) -> uniloop::uniloop (shared; the static
#         library if uniloop_USE_STATIC_LIBS is ON or no shared one is
#         installed), uniloop::uniloop_static, uniloop::uniloop_shared
#
#   scripts/install-c.sh [options] PREFIX
#     --libdir DIR     default PREFIX/lib
#     --profile NAME   cargo profile to build (default release-c: release
#                      without debug info); `dev` for a quick debug build
#     --no-build       install what the profile's last build left
#     --destdir DIR    stage under DIR (packaging): files go to DIR/PREFIX/...
#
# ELF platforms (Linux, the BSDs). Windows and macOS are not handled here.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=release-c BUILD=1 PREFIX= LIBDIR= DESTDIR=${DESTDIR:-}
while [ $# -gt 0 ]; do
  case $1 in
    --libdir) LIBDIR=$2; shift ;;
    --libdir=*) LIBDIR=${1#*=} ;;
    --profile) PROFILE=$2; shift ;;
    --profile=*) PROFILE=${1#*=} ;;
    --no-build) BUILD=0 ;;
    --destdir) DESTDIR=$2; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "install-c.sh: unknown option $1" >&2; exit 2 ;;
    *) [ -z "$PREFIX" ] || { echo "install-c.sh: one PREFIX only" >&2; exit 2; }; PREFIX=$1 ;;
  esac
  shift
done
[ -n "$PREFIX" ] || { echo "usage: scripts/install-c.sh [--libdir DIR] [--profile NAME] PREFIX" >&2; exit 2; }
case $PREFIX in /*) ;; *) PREFIX=$(cd "$PREFIX" 2>/dev/null && pwd || echo "$PWD/$PREFIX") ;; esac
PREFIX=${PREFIX%/}
LIBDIR=${LIBDIR:-$PREFIX/lib}
case $LIBDIR in /*) ;; *) LIBDIR=$PREFIX/$LIBDIR ;; esac
INCDIR=$PREFIX/include

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
MAJOR=${VERSION%%.*}
MINOR=${VERSION#*.}; MINOR=${MINOR%%.*}
PTR_BYTES=$(( $(getconf LONG_BIT) / 8 ))
[ -n "$VERSION" ] || { echo "install-c.sh: no version in Cargo.toml" >&2; exit 1; }

if [ "$BUILD" = 1 ]; then
  cargo build -q -p uniloop-capi --profile "$PROFILE"
fi
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
case $PROFILE in dev) OUT=$TARGET_DIR/debug ;; *) OUT=$TARGET_DIR/$PROFILE ;; esac
for f in libuniloop.a libuniloop.so; do
  [ -f "$OUT/$f" ] || { echo "install-c.sh: $OUT/$f not built" >&2; exit 1; }
done

# What libuniloop.a needs from the system when linked statically (rustc's
# native-static-libs for the target; -lgcc_s for unwinding).
case $(uname -s) in
  Linux) PRIVATE_LIBS="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc" ;;
  FreeBSD|DragonFly) PRIVATE_LIBS="-lexecinfo -lgcc_s -lutil -lrt -lpthread -lm -lc" ;;
  NetBSD|OpenBSD) PRIVATE_LIBS="-lexecinfo -lgcc_s -lutil -lrt -lpthread -lm -lc" ;;
  *) echo "install-c.sh: $(uname -s) is not handled (ELF platforms only)" >&2; exit 1 ;;
esac
CMAKE_PRIVATE_LIBS=$(printf '%s' "$PRIVATE_LIBS" | sed 's/-l//g; s/ /;/g')

D=$DESTDIR
install -d "$D$INCDIR/async" "$D$LIBDIR/pkgconfig" "$D$LIBDIR/cmake/uniloop"
install -m 644 crates/uniloop-capi/include/uniloop.h "$D$INCDIR/"
install -m 644 crates/uniloop-capi/include/async/*.h "$D$INCDIR/async/"

install -m 644 "$OUT/libuniloop.a" "$D$LIBDIR/libuniloop.a"
# The archive holds the Rust standard library's objects with their debug
# sections (rustc ships them so); a C library does not need them.
if command -v strip >/dev/null; then strip --strip-debug "$D$LIBDIR/libuniloop.a"; fi
SO=libuniloop.so.$VERSION
install -m 755 "$OUT/libuniloop.so" "$D$LIBDIR/$SO"
ln -sf "$SO" "$D$LIBDIR/libuniloop.so.$MAJOR"
ln -sf "libuniloop.so.$MAJOR" "$D$LIBDIR/libuniloop.so"

DESCRIPTION="uniloop's C library: an event loop with readiness, posted I/O, completions, timers and signals"
cat >"$D$LIBDIR/pkgconfig/uniloop.pc" <<EOF
prefix=$PREFIX
includedir=$INCDIR
libdir=$LIBDIR

Name: uniloop
Description: $DESCRIPTION
Version: $VERSION
Cflags: -I\${includedir}
Libs: -L\${libdir} -luniloop
Libs.private: $PRIVATE_LIBS
EOF
cat >"$D$LIBDIR/pkgconfig/uniloop-static.pc" <<EOF
prefix=$PREFIX
includedir=$INCDIR
libdir=$LIBDIR

Name: uniloop-static
Description: $DESCRIPTION (static library)
Version: $VERSION
Cflags: -I\${includedir}
Libs: \${libdir}/libuniloop.a $PRIVATE_LIBS
EOF

cat >"$D$LIBDIR/cmake/uniloop/uniloopConfig.cmake" <<EOF
# uniloop $VERSION, installed by scripts/install-c.sh.
#   find_package(uniloop)  ->  uniloop::uniloop, uniloop::uniloop_static,
#   uniloop::uniloop_shared. uniloop::uniloop is the shared library unless
#   uniloop_USE_STATIC_LIBS is ON (or no shared library is installed).
cmake_minimum_required(VERSION 3.5)
set(_uniloop_libdir "$LIBDIR")
set(_uniloop_incdir "$INCDIR")
include(CMakeFindDependencyMacro)
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_dependency(Threads)
if(NOT TARGET uniloop::uniloop_static)
  add_library(uniloop::uniloop_static STATIC IMPORTED)
  set_target_properties(uniloop::uniloop_static PROPERTIES
    IMPORTED_LOCATION "\${_uniloop_libdir}/libuniloop.a"
    INTERFACE_INCLUDE_DIRECTORIES "\${_uniloop_incdir}"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;$CMAKE_PRIVATE_LIBS")
endif()
if(NOT TARGET uniloop::uniloop_shared AND EXISTS "\${_uniloop_libdir}/$SO")
  add_library(uniloop::uniloop_shared SHARED IMPORTED)
  set_target_properties(uniloop::uniloop_shared PROPERTIES
    IMPORTED_LOCATION "\${_uniloop_libdir}/$SO"
    IMPORTED_SONAME "libuniloop.so.$MAJOR"
    INTERFACE_INCLUDE_DIRECTORIES "\${_uniloop_incdir}")
endif()
if(NOT TARGET uniloop::uniloop)
  add_library(uniloop::uniloop INTERFACE IMPORTED)
  if(uniloop_USE_STATIC_LIBS OR NOT TARGET uniloop::uniloop_shared)
    set_target_properties(uniloop::uniloop PROPERTIES INTERFACE_LINK_LIBRARIES uniloop::uniloop_static)
  else()
    set_target_properties(uniloop::uniloop PROPERTIES INTERFACE_LINK_LIBRARIES uniloop::uniloop_shared)
  endif()
endif()
set(uniloop_VERSION "$VERSION")
unset(_uniloop_libdir)
unset(_uniloop_incdir)
EOF
# Compatible: the same MAJOR and at least the version asked for (for 0.x,
# as Cargo reads versions, the same MINOR too); 32/64-bit must match.
cat >"$D$LIBDIR/cmake/uniloop/uniloopConfigVersion.cmake" <<EOF
set(PACKAGE_VERSION "$VERSION")
if("\${PACKAGE_FIND_VERSION}" STREQUAL "")
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
elseif(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION
       OR NOT PACKAGE_FIND_VERSION_MAJOR EQUAL $MAJOR
       OR ($MAJOR EQUAL 0 AND NOT PACKAGE_FIND_VERSION_MINOR EQUAL $MINOR))
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION VERSION_EQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
if(NOT "\${CMAKE_SIZEOF_VOID_P}" STREQUAL "" AND NOT CMAKE_SIZEOF_VOID_P EQUAL $PTR_BYTES)
  set(PACKAGE_VERSION "\${PACKAGE_VERSION} ($((PTR_BYTES * 8))-bit)")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
endif()
EOF
echo "installed uniloop $VERSION ($PROFILE) in $PREFIX (libraries in $LIBDIR)"
