# Shared by the scripts: installs Debian packages that are missing (as root, or through sudo).
install_debs() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing Debian packages: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

require_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "cargo not found: installing Debian's Rust toolchain (a rustup toolchain >= 1.85 is preferred)" >&2
        install_debs cargo rustc
    fi
}
