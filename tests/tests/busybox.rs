//! busybox sh scripts — pipes, loops, command substitution, redirections into /tmp, and the
//! everyday tools — run natively with the staged busybox and then as init under the kernel:
//! the output and the exit status must be the same.
//!
//! Each script gets the root directory as $1 ("/" under vk, the staged tree natively) and
//! works in a fresh directory under /tmp, whose name it never prints.

use std::path::Path;

use vk_tests::guest::{PROGRAM_TIMEOUT, root_dir, run_guest, run_native};

fn same(script: &str) {
    let root = root_dir();
    let sh = root.join("bin/busybox");
    let path = format!("{0}/bin:{0}/usr/bin:{0}/sbin:{0}/usr/sbin", root.display());
    let root_s = root.to_string_lossy().into_owned();
    let native = run_native(&sh, &["sh", "-c", script, "sh", &root_s], Path::new("/"), &path, PROGRAM_TIMEOUT);
    let (code, out, console) = run_guest("/bin/sh", &["-c", script, "sh", "/"], PROGRAM_TIMEOUT);
    assert!(native.output.contains("@end"), "the script does not finish natively:\n{}", native.output);
    assert_eq!(
        (code, out.as_str()),
        (native.code, native.output.as_str()),
        "vk differs from native for:\n{script}\nconsole:\n{console}"
    );
}

#[test]
fn pipelines() {
    same(
        r##"printf 'pear\napple\nfig\n' | sort | tr a-z A-Z | cat -n
seq 1 20000 | sort -rn | head -3
yes vk | head -c 100000 | wc -c
printf 'foo1\nbar22\nbaz333\n' | grep -E '[0-9]{2,}' | sed -E 's/([a-z]+)([0-9]+)/\2-\1/'
seq 1 100 | awk '{ s += $1 } END { print s }'
echo one two three | { read a b c; echo "$c $b $a"; }
echo @end"##,
    );
}

#[test]
fn loops_and_functions() {
    same(
        r##"i=0
while [ $i -lt 5 ]; do i=$((i + 1)); printf '%s ' $i; done; echo
for w in x y z; do echo "word $w"; done
n=0; until [ $n -ge 3 ]; do n=$((n + 1)); done; echo "until $n"
f() { echo "f got $# args: $*"; return 3; }
f a 'b c' d; echo "f returned $?"
case "hello.c" in *.h) echo header ;; *.c) echo source ;; esac
for i in 1 2 3 4 5 6; do [ $i -eq 2 ] && continue; [ $i -eq 5 ] && break; echo "i=$i"; done
echo @end"##,
    );
}

#[test]
fn command_substitution_and_subshells() {
    same(
        r##"n=$(echo hello | wc -c); echo "n=$n"
echo "$(echo $(echo nested) levels)"
x=outer; (x=inner; echo "in $x"); echo "out $x"
echo "backquotes `echo work`"
lines=$(printf 'a\nb\nc\n'); echo "$lines" | wc -l
echo "status $(false; echo $?) $(true; echo $?)"
sh -c 'exit 7'; echo "child exit $?"
sh -c 'kill -TERM $$'; echo "killed by TERM: $?"
echo @end"##,
    );
}

#[test]
fn redirections_into_tmp() {
    same(
        r##"d=$(mktemp -d /tmp/bb.XXXXXX) || exit 1
cd "$d"
echo one > f; echo two >> f; cat < f
ls; wc -l < f
sort -r f > g; cat g
grep -c o f; sed 's/one/ONE/' f
cat <<END > h
here $((6 * 7))
document
END
cat h
echo err 1>&2 2>/dev/null
ls nothing-here 2> e; [ -s e ] && echo "stderr captured"
exec 3> fd3; echo "via fd 3" >&3; exec 3>&-; cat fd3
mkdir -p sub/deeper && touch sub/deeper/x && ln -s sub/deeper link && ls link
mv g g2 && ls
cp f copy && cmp f copy && echo same
find . -type f | sort
wc -c f g2 h | tail -1
rm -r sub link; ls
cd /; rm -r "$d"; [ -e "$d" ] || echo gone
echo @end"##,
    );
}

#[test]
fn tools_on_the_root() {
    same(
        r##"R=$1
ls "$R/etc" | grep -E '^(passwd|group|shadow)$'
head -1 "$R/etc/passwd" | cut -d: -f1,3,6
grep -c root "$R/etc/group"
ls "$R/usr/tests" | grep -c '^t_'
basename "$R/bin/sh"; readlink "$R/bin/sh"
[ -x "$R/bin/busybox" ] && echo executable
test -d "$R/tmp" && echo "tmp is a directory"
expr 6 \* 7; echo $((0x10 + 010))
printf '%05d|%-4s|%x\n' 42 ab 255
echo @end"##,
    );
}

#[test]
fn background_jobs_and_wait() {
    same(
        r##"sleep 0.2 & p=$!
wait $p; echo "waited: $?"
(exit 5) & wait $!; echo "background exit $?"
for i in 1 2 3; do (echo "job $i" > /tmp/bbjob.$$.$i) & done; wait
cat /tmp/bbjob.$$.* | sort; rm -f /tmp/bbjob.$$.*
trap 'echo trapped USR1' USR1; kill -USR1 $$; echo after
echo @end"##,
    );
}
