#!/bin/sh
# Build the guest test programs into OUTDIR (see rootimg/tests/):
#   - every rootimg/tests/t_*.c (and h_*.c, helpers for the integration tests) as a static musl
#     binary (musl-gcc -static -O2 -Wall -Werror), and the t_ptrace*.c once more as static
#     glibc binaries (t_ptrace*_glibc), and t_vdso.c dynamically linked with glibc (t_vdso_glibc),
#   - rootimg/tests/dyn: t_dyn and its helper h_dynprobe dynamically linked, once with musl
#     (t_dyn_musl, h_dynprobe_musl) and once with glibc (gcc: t_dyn_glibc, h_dynprobe_glibc),
#     both position-independent, and h_dynprobe as a glibc static PIE (h_dynprobe_spie), with their test libraries in OUTDIR/lib (stage.sh puts the
#     dynamic linkers and C libraries they need in the root),
#   - the std-only Rust program rootimg/tests/rust as a static binary named t_rust
#     (x86_64-unknown-linux-musl when that target is installed, else glibc with +crt-static),
#   - rootimg/tests/run-all.sh, which runs them all.
# Usage: rootimg/build-tests.sh OUTDIR
# Prints one summary line on success; exits non-zero on any build failure.
# CARGO_TARGET_DIR defaults to ${TMPDIR:-/tmp}/vk-target-guest (never the workspace's target/).
set -eu
out=${1:?usage: build-tests.sh OUTDIR}
tests=$(cd "$(dirname "$0")/tests" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)

die() {
    echo "build-tests.sh: $*" >&2
    exit 1
}

# The C compiler: install musl-tools non-interactively when missing (as CI does).
if ! command -v musl-gcc >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null 2>&1 ||
            { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 &&
              DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null 2>&1; } ||
            die "could not install musl-tools"
    fi
    command -v musl-gcc >/dev/null 2>&1 || die "musl-gcc not found (apt-get install musl-tools)"
fi

# A binary is static when it asks for no program interpreter.
is_static() {
    if command -v readelf >/dev/null 2>&1; then
        ! readelf -lW "$1" 2>/dev/null | grep -q 'INTERP'
    else
        return 0
    fi
}

built=""
# t_*.c are the test programs; h_*.c are helpers the integration tests run (not tests).
for c in "$tests"/t_*.c "$tests"/h_*.c; do
    name=$(basename "$c" .c)
    musl-gcc -static -O2 -std=gnu11 -Wall -Werror -o "$out/$name.tmp" "$c" ||
        die "$name: compilation failed"
    is_static "$out/$name.tmp" || die "$name: not statically linked"
    mv -f "$out/$name.tmp" "$out/$name"
    built="$built $name"
done

# The ptrace tests once more with glibc, statically linked (its ptrace(3) wrapper, raise and
# threads): t_ptrace*_glibc.
command -v gcc >/dev/null 2>&1 || die "gcc not found (apt-get install gcc)"
for c in "$tests"/t_ptrace*.c; do
    name=$(basename "$c" .c)_glibc
    gcc -static -O2 -std=gnu11 -Wall -Werror -pthread -o "$out/$name.tmp" "$c" ||
        die "$name: compilation failed"
    is_static "$out/$name.tmp" || die "$name: not statically linked"
    mv -f "$out/$name.tmp" "$out/$name"
    built="$built $name"
done

# t_vdso once more, dynamically linked with glibc, whose dynamic linker finds the vDSO itself
# (t_vdso_glibc; `t_vdso_glibc loop N` is what tests/tests/vdso.rs counts system calls of).
gcc -O2 -std=gnu11 -Wall -Werror -fPIE -pie -o "$out/t_vdso_glibc.tmp" "$tests/t_vdso.c" ||
    die "t_vdso_glibc: compilation failed"
! is_static "$out/t_vdso_glibc.tmp" || die "t_vdso_glibc: not dynamically linked"
mv -f "$out/t_vdso_glibc.tmp" "$out/t_vdso_glibc"
built="$built t_vdso_glibc"

# The dynamically linked tests: for each C library, the libraries t_dyn links (libvktls, found
# through $ORIGIN/lib) and opens (libvkdl), libvkpath (found only through LD_LIBRARY_PATH),
# then t_dyn and h_dynprobe.
dyn="$tests/dyn"
command -v gcc >/dev/null 2>&1 || die "gcc not found (apt-get install gcc)"
for libc in musl glibc; do
    case $libc in
        musl) cc=musl-gcc ;;
        glibc) cc=gcc ;;
    esac
    mkdir -p "$out/lib/path_$libc"
    for lib in vktls vkdl; do
        $cc -shared -fPIC -O2 -Wall -Werror -o "$out/lib/lib${lib}_$libc.so" "$dyn/lib$lib.c" ||
            die "lib${lib}_$libc.so: compilation failed"
    done
    $cc -shared -fPIC -O2 -Wall -Werror -o "$out/lib/path_$libc/libvkpath.so" "$dyn/libvkpath.c" ||
        die "libvkpath.so ($libc): compilation failed"
    $cc -O2 -std=gnu11 -Wall -Werror -fPIE -pie -pthread -o "$out/t_dyn_$libc.tmp" "$dyn/t_dyn.c" \
        -L"$out/lib" -lvktls_$libc -Wl,-rpath,'$ORIGIN/lib' || die "t_dyn_$libc: compilation failed"
    $cc -O2 -std=gnu11 -Wall -Werror -fPIE -pie -o "$out/h_dynprobe_$libc.tmp" "$dyn/h_dynprobe.c" ||
        die "h_dynprobe_$libc: compilation failed"
    spie=""
    if [ $libc = glibc ]; then
        # A static PIE (musl-gcc cannot make one): loaded like ld.so run directly.
        gcc -O2 -std=gnu11 -Wall -Werror -DVK_STATIC_PIE -static-pie -o "$out/h_dynprobe_spie.tmp" "$dyn/h_dynprobe.c" ||
            die "h_dynprobe_spie: compilation failed"
        readelf -lW "$out/h_dynprobe_spie.tmp" | grep -q 'DYN' && is_static "$out/h_dynprobe_spie.tmp" ||
            die "h_dynprobe_spie: not a static PIE"
        mv -f "$out/h_dynprobe_spie.tmp" "$out/h_dynprobe_spie"
        spie=h_dynprobe_spie
    fi
    for p in t_dyn_$libc h_dynprobe_$libc; do
        ! is_static "$out/$p.tmp" || die "$p: not dynamically linked"
        mv -f "$out/$p.tmp" "$out/$p"
        built="$built $p"
    done
    built="$built${spie:+ $spie}"
done

# The Rust program: its own workspace, its own target directory, no crates, no network.
command -v cargo >/dev/null 2>&1 || die "cargo not found"
target=x86_64-unknown-linux-gnu
sysroot=$(rustc --print sysroot 2>/dev/null || true)
if [ -n "$sysroot" ] && [ -d "$sysroot/lib/rustlib/x86_64-unknown-linux-musl" ]; then
    target=x86_64-unknown-linux-musl
fi
target_dir=${CARGO_TARGET_DIR:-${TMPDIR:-/tmp}/vk-target-guest}
# Non-PIE like busybox-static: the test is about std, not about loading static-pie images.
RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
CARGO_TARGET_DIR="$target_dir" \
    cargo build -q --release --offline --locked --target "$target" \
    --manifest-path "$tests/rust/Cargo.toml" || die "t_rust: cargo build failed"
is_static "$target_dir/$target/release/t_rust" || die "t_rust: not statically linked"
cp -f "$target_dir/$target/release/t_rust" "$out/t_rust.tmp"
mv -f "$out/t_rust.tmp" "$out/t_rust"
built="$built t_rust"

cp -f "$tests/run-all.sh" "$out/run-all.sh"
chmod 755 "$out/run-all.sh"
echo "build-tests: built$built ($target for t_rust) in $out"
