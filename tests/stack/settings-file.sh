# Sourced by up and down: where the settings of project $PROJECT live.
# Beside the stack in a source tree (tests/stack/.env.<project>); installed
# (/usr/share/halo/stacks/reference, which a package owns and an operator
# may not write), under the user's state directory, so that removing the
# package leaves nothing behind. stack.lua's compose.env_file lists both, in
# this order, and halo uses the first that exists; down removes both.
SETTINGS_IN_STACK=$HERE/.env.$PROJECT
SETTINGS_IN_STATE=${XDG_STATE_HOME:-${HOME:-/nonexistent}/.local/state}/halo/stacks/$PROJECT.env
if [ -f "$HERE/../../CMakeLists.txt" ]; then ENVFILE=$SETTINGS_IN_STACK; else ENVFILE=$SETTINGS_IN_STATE; fi
