# What `cmake --install` installs besides the programs and the library: the
# man pages and the shell completions.

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
