# fish completion for mitmwatch.
#
# Like the bash and zsh scripts kingpin generates, it asks the binary itself
# (`mitmwatch --completion-bash WORDS…` prints the commands, flags and flag
# values that can follow WORDS), so it never falls behind the CLI.

function __mitmwatch_complete
    set -l words (commandline -opc) (commandline -ct)
    # words[1] is the command as typed: ./mitmwatch completes with itself.
    $words[1] --completion-bash $words[2..-1] 2>/dev/null
end

complete -c mitmwatch -f -a '(__mitmwatch_complete)'
# Where mitmwatch has nothing to offer (a --config FILE, a capture to read),
# complete file names, as bash's `complete -o default` does.
complete -c mitmwatch -n 'test (count (__mitmwatch_complete)) -eq 0' -F
