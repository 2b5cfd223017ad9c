# What turns the build into something a machine runs as a service: the man
# pages, the shell completions and the systemd unit (installed by
# `cmake --install`), and the Debian package (`cpack -G DEB`), which holds
# everything `cmake --install` installs.  docs/service.md explains the unit;
# tests/package checks the .deb end to end.

# -- Man pages ---------------------------------------------------------------
# Written by hand in roff (docs/man/); the version in their footer is the
# project's, filled in here so that it cannot drift.
set(GALVANI_MAN_PAGES galvani.1 galvanid.8 galvani-protocol.7)
foreach(_page ${GALVANI_MAN_PAGES})
    string(REGEX REPLACE ".*\\.([0-9])$" "\\1" _section ${_page})
    configure_file(${PROJECT_SOURCE_DIR}/docs/man/${_page} ${CMAKE_BINARY_DIR}/man/${_page} @ONLY)
    install(FILES ${CMAKE_BINARY_DIR}/man/${_page}
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man${_section})
endforeach()

# -- Shell completions -------------------------------------------------------
# bash-completion loads completions/<command> on first use.  zsh has no single
# directory every system searches: Debian and Ubuntu search vendor-completions
# (their zsh leaves share/zsh/site-functions out of $fpath), most others
# site-functions; set GALVANI_ZSH_COMPLETION_DIR for those.
set(GALVANI_BASH_COMPLETION_DIR ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
    CACHE STRING "Where the bash completion of galvani is installed (relative: under the prefix)")
set(GALVANI_ZSH_COMPLETION_DIR ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions
    CACHE STRING "Where the zsh completion of galvani (_galvani) is installed (relative: under the prefix)")
install(FILES ${PROJECT_SOURCE_DIR}/contrib/completions/galvani.bash
    DESTINATION ${GALVANI_BASH_COMPLETION_DIR} RENAME galvani)
install(FILES ${PROJECT_SOURCE_DIR}/contrib/completions/_galvani
    DESTINATION ${GALVANI_ZSH_COMPLETION_DIR})

# -- The systemd unit --------------------------------------------------------
# lib/systemd/system under the prefix: /usr/lib/systemd/system for the .deb,
# a directory systemd searches on merged-/usr systems (Debian 12 and later).
set(GALVANI_SYSTEMD_UNIT_DIR lib/systemd/system
    CACHE STRING "Where galvanid.service is installed (relative: under the prefix)")
# contrib/galvanid.service names /usr/bin/galvanid, right for the .deb and
# for a copy by hand.  Like galvani.pc (cmake/GalvaniPkgConfig.cmake) the
# installed copy is written at install time, when CMAKE_INSTALL_PREFIX holds
# the prefix in use (cpack's /usr, --prefix ...), not the configure-time one.
# Each prefix and DESTDIR gets its own generated file (removed once
# installed), so that two installs running at once (a parallel ctest) never
# copy each other's.
if(IS_ABSOLUTE "${CMAKE_INSTALL_BINDIR}")
    set(_gv_bindir "${CMAKE_INSTALL_BINDIR}")
else()
    set(_gv_bindir "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}")
endif()
if(IS_ABSOLUTE "${GALVANI_SYSTEMD_UNIT_DIR}")
    set(_gv_unit_dest "${GALVANI_SYSTEMD_UNIT_DIR}")
else()
    set(_gv_unit_dest "\${CMAKE_INSTALL_PREFIX}/${GALVANI_SYSTEMD_UNIT_DIR}")
endif()
install(CODE "
    file(READ [==[${PROJECT_SOURCE_DIR}/contrib/galvanid.service]==] _gv_unit)
    string(REPLACE \" /usr/bin/\" \" ${_gv_bindir}/\" _gv_unit \"\${_gv_unit}\")
    string(MD5 _gv_key \"\$ENV{DESTDIR}|\${CMAKE_INSTALL_PREFIX}\")
    set(_gv_dir [==[${CMAKE_BINARY_DIR}/systemd]==])
    set(_gv_out \"\${_gv_dir}/\${_gv_key}/galvanid.service\")
    file(WRITE \"\${_gv_out}\" \"\${_gv_unit}\")
    file(INSTALL DESTINATION \"${_gv_unit_dest}\" TYPE FILE FILES \"\${_gv_out}\")
    file(REMOVE_RECURSE \"\${_gv_dir}/\${_gv_key}\")
")

# -- The Debian package --------------------------------------------------------
# One package, galvani, with everything installed above and by the targets:
# galvanid, galvani-shim, galvani, libgalvani (.so, .a, headers, galvani.pc),
# the man pages, the completions and the unit.  Its Depends are derived from
# the binaries by dpkg-shlibdeps (dpkg-dev), so they name exactly the runtime
# libraries the build linked against, at the versions it linked against.
set(CPACK_PACKAGE_NAME galvani)
set(CPACK_PACKAGE_VENDOR galvani)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "job-control daemon and CLI built on a C signals library")
set(CPACK_PACKAGE_DESCRIPTION
    "galvanid runs commands as jobs that outlive it (each under its own galvani-shim supervisor),
and lets clients pause, resume, cancel and re-parameterise them over HTTP, WebSocket and SSE.
The galvani CLI drives it from a shell.  libgalvani, the signals library it is built on,
comes with its headers and a pkg-config file.")
set(GALVANI_PACKAGE_MAINTAINER "galvani maintainers <galvani@localhost>"
    CACHE STRING "The Maintainer field of the .deb")
set(CPACK_PACKAGE_CONTACT "${GALVANI_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# adduser: the postinst creates the galvani system user.
set(CPACK_DEBIAN_PACKAGE_DEPENDS adduser)
find_program(GALVANI_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(GALVANI_DPKG_SHLIBDEPS)
    set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
    message(STATUS "dpkg-shlibdeps not found (Debian's dpkg-dev): a .deb built here would not list "
                   "the libraries it needs")
endif()
# A shlibs file for libgalvani.so.0, so that packages built against it get
# the right Depends.  CPack would call ldconfig from a postinst of its own, but
# ours replaces it: contrib/debian/triggers asks dpkg for ldconfig instead.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/contrib/debian/postinst
    ${PROJECT_SOURCE_DIR}/contrib/debian/prerm
    ${PROJECT_SOURCE_DIR}/contrib/debian/postrm
    ${PROJECT_SOURCE_DIR}/contrib/debian/triggers)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_GENERATOR DEB)
include(CPack)
