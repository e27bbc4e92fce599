# bash completion for salesd(8): the commands, the global options before the
# command and each command's own options.  Plain bash (complete/compgen), so
# it works without the bash-completion package's helpers too.

_salesd() {
        local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
        local i word cmd= opts=

        # The command is the first word that is neither an option nor the
        # value of -c/--config.
        for ((i = 1; i < COMP_CWORD; i++)); do
                word=${COMP_WORDS[i]}
                case $word in
                -c | --config) ((i++)) ;;
                -*) ;;
                *)
                        cmd=$word
                        break
                        ;;
                esac
        done

        case $prev in
        -c | --config)
                compopt -o filenames 2>/dev/null
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                return
                ;;
        --date | --from | --to)
                COMPREPLY=()
                return
                ;;
        esac

        if [[ -z $cmd ]]; then
                if [[ $cur == -* ]]; then
                        opts="-c --config -h --help -V --version"
                else
                        opts="run once backfill init-schema check-config status verify"
                fi
        else
                case $cmd in
                once) opts="--date" ;;
                backfill)
                        # each of --from and --to once
                        for word in --from --to; do
                                [[ " ${COMP_WORDS[*]:1:COMP_CWORD-1} " == *" $word "* ]] || opts+=" $word"
                        done
                        ;;
                status) opts="--json" ;;
                verify)
                        # each option once
                        for word in --from --to --repair --json; do
                                [[ " ${COMP_WORDS[*]:1:COMP_CWORD-1} " == *" $word "* ]] || opts+=" $word"
                        done
                        ;;
                esac
        fi
        mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
}
complete -F _salesd salesd
