# galvani.pc is written at *install* time, not configure time.
#
# Why: `cmake --install build --prefix /somewhere` (used by the install test
# and by packagers) changes CMAKE_INSTALL_PREFIX after configuration.  A .pc
# generated at configure time would still point at the configure-time prefix
# (/usr/local) and consumers would pick up the wrong headers.  Inside the
# install script CMAKE_INSTALL_PREFIX holds the prefix actually in use, so we
# configure the template there.  DESTDIR is handled by file(INSTALL).
#
# Relative GNUInstallDirs paths (the normal case; lib/<multiarch> on Debian
# when the prefix is /usr) are expressed relative to ${prefix}; absolute ones
# are used as given.
set(GALVANI_PC_TEMPLATE ${CMAKE_CURRENT_LIST_DIR}/galvani.pc.in)
set(GALVANI_PC_OUTPUT ${CMAKE_BINARY_DIR}/pkgconfig/galvani.pc)

foreach(_dir LIBDIR INCLUDEDIR)
    if(IS_ABSOLUTE "${CMAKE_INSTALL_${_dir}}")
        set(GALVANI_PC_${_dir} "${CMAKE_INSTALL_${_dir}}")
    else()
        set(GALVANI_PC_${_dir} "\${prefix}/${CMAKE_INSTALL_${_dir}}")
    endif()
endforeach()
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
    set(GALVANI_PC_DEST "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
else()
    set(GALVANI_PC_DEST "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig")
endif()

install(CODE "
    set(GV_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
    set(GV_PC_LIBDIR [==[${GALVANI_PC_LIBDIR}]==])
    set(GV_PC_INCLUDEDIR [==[${GALVANI_PC_INCLUDEDIR}]==])
    set(GV_PC_DESCRIPTION [==[${PROJECT_DESCRIPTION}]==])
    set(GV_PC_VERSION [==[${PROJECT_VERSION}]==])
    configure_file([==[${GALVANI_PC_TEMPLATE}]==] [==[${GALVANI_PC_OUTPUT}]==] @ONLY)
    file(INSTALL DESTINATION \"${GALVANI_PC_DEST}\"
         TYPE FILE FILES [==[${GALVANI_PC_OUTPUT}]==])
")
