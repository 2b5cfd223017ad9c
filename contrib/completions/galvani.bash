# bash completion for galvani, the command-line client of galvanid.
#
# Installed as share/bash-completion/completions/galvani, where
# bash-completion finds it on first use; works without bash-completion too
# (`source` it), using plain compgen.  Commands, options and values follow
# `galvani --help` and `galvani COMMAND --help`; tests/package checks that
# every command and option listed there is offered here.  Job ids are asked
# of the daemon (`galvani ls`, with the --server and --token of the line).

# The words galvani itself treats as options taking a value: the word after
# one of them is a value, never a command.
_galvani_value_opts=" --server --token --name --param --pause-mode --label --rule --cwd --env --timeout
 --retries --backoff --priority --status --limit --then --name-glob --job "

_galvani_commands="run ls show pause resume cancel set params rules logs watch start rm rerun pipeline nodes"

# Ids of the jobs galvanid has, newest first.  `timeout` keeps a TAB from
# hanging on a daemon that does not answer.
_galvani_job_ids()
{
    timeout 3 galvani "${_galvani_conn[@]}" ls 2>/dev/null | awk '$1 ~ /^[0-9]+$/ { print $1 }'
}

_galvani_pipeline_ids()
{
    timeout 3 galvani "${_galvani_conn[@]}" pipeline ls 2>/dev/null | awk '$1 ~ /^[0-9]+$/ { print $1 }'
}

# COMPREPLY from a word list, for the current word.
_galvani_words()
{
    local IFS=$' \t\n'
    # shellcheck disable=SC2207 # compgen prints one word per line, none with spaces
    COMPREPLY=($(compgen -W "$1" -- "$cur"))
}

_galvani()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local cmd="" sub="" dashdash=0 i w
    _galvani_conn=()

    # Walk the words before the cursor: the command, a sub-command (rules,
    # pipeline), the connection options, and where run's command starts.
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ $w == -- ]]; then
            dashdash=$i
            break
        fi
        if [[ $w == --server || $w == --token ]]; then
            _galvani_conn+=("$w" "${COMP_WORDS[i + 1]}")
        fi
        if [[ $_galvani_value_opts == *" $w "* ]]; then
            ((i++))
            continue
        fi
        [[ $w == -* ]] && continue
        if [[ -z $cmd ]]; then
            cmd=$w
        elif [[ -z $sub && ($cmd == rules || $cmd == pipeline) ]]; then
            sub=$w
        fi
    done

    # After "galvani run [OPTIONS] --": the job's own command line.
    if ((dashdash)); then
        if ((COMP_CWORD == dashdash + 1)); then
            local IFS=$'\n'
            # shellcheck disable=SC2207
            COMPREPLY=($(compgen -c -- "$cur"))
        elif declare -F _command_offset >/dev/null; then
            _command_offset $((dashdash + 1)) # bash-completion: complete as that command
        else
            local IFS=$'\n'
            # shellcheck disable=SC2207
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        return 0
    fi

    # Values of options.
    case $prev in
    --server) _galvani_words "http://127.0.0.1:8000" ; return 0 ;;
    --token | --name | --param | --label | --rule | --timeout | --retries | --backoff | --priority | --limit | \
        --name-glob)
        COMPREPLY=()
        return 0
        ;;
    --pause-mode) _galvani_words "stop cooperative" ; return 0 ;;
    --then) _galvani_words "pause cancel resume notify" ; return 0 ;;
    --cwd)
        local IFS=$'\n'
        # shellcheck disable=SC2207
        COMPREPLY=($(compgen -d -- "$cur"))
        return 0
        ;;
    --env)
        # NAME= from the caller's environment; the value is the user's to type.
        local IFS=$'\n'
        compopt -o nospace 2>/dev/null
        # shellcheck disable=SC2207
        COMPREPLY=($(compgen -e -S = -- "$cur"))
        return 0
        ;;
    --status)
        # A comma list: complete the word after the last comma.
        local head="" last=$cur s
        if [[ $cur == *,* ]]; then
            head=${cur%,*},
            last=${cur##*,}
        fi
        COMPREPLY=()
        for s in queued running paused succeeded failed cancelled; do
            [[ $s == "$last"* ]] && COMPREPLY+=("$head$s")
        done
        return 0
        ;;
    --job) _galvani_words "$(_galvani_job_ids)" ; return 0 ;;
    esac

    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            _galvani_words "--server --token --json --help -h --version -V"
        else
            _galvani_words "$_galvani_commands"
        fi
        return 0
    fi

    local common="--json --help"
    case $cmd in
    run)
        _galvani_words "--name --param --pause-mode --label --rule --shell -f --follow --cwd --env --clean-env
            --timeout --retries --backoff --priority $common --"
        ;;
    ls)
        [[ $cur == -* ]] && _galvani_words "--status --name --label --limit $common"
        ;;
    rerun)
        if [[ $cur == -* ]]; then
            _galvani_words "-f --follow $common"
        else
            _galvani_words "$(_galvani_job_ids)"
        fi
        ;;
    show | set | pause | resume | cancel | rm | watch)
        if [[ $cur == -* ]]; then
            _galvani_words "$common"
        else
            _galvani_words "$(_galvani_job_ids)"
        fi
        ;;
    params)
        if [[ $cur == -* ]]; then
            _galvani_words "--history $common"
        else
            _galvani_words "$(_galvani_job_ids)"
        fi
        ;;
    logs)
        if [[ $cur == -* ]]; then
            _galvani_words "-f --follow --help"
        else
            _galvani_words "$(_galvani_job_ids)"
        fi
        ;;
    start | nodes)
        _galvani_words "$common"
        ;;
    rules)
        case $sub in
        "") _galvani_words "add rm --job $common" ;;
        add) [[ $cur == -* ]] && _galvani_words "--then --name-glob --label $common" ;;
        rm) [[ $cur == -* ]] && _galvani_words "$common" ;;
        esac
        ;;
    pipeline)
        case $sub in
        "") _galvani_words "run ls show pause resume cancel retry" ;;
        run)
            if [[ $cur == -* ]]; then
                _galvani_words "--follow $common"
            else
                local IFS=$'\n'
                # shellcheck disable=SC2207
                COMPREPLY=($(compgen -f -X '!*.json' -- "$cur") $(compgen -d -- "$cur"))
            fi
            ;;
        ls) _galvani_words "$common" ;;
        *)
            if [[ $cur == -* ]]; then
                _galvani_words "$common"
            else
                _galvani_words "$(_galvani_pipeline_ids)"
            fi
            ;;
        esac
        ;;
    esac
    return 0
}

complete -F _galvani galvani
