# vk — build, boot and test. `make boot` and `make test` are the whole set-up on a fresh
# Debian machine: every target installs the Debian packages it needs when they are missing.

CARGO   ?= cargo
RUN     := run
RELEASE := target/release
IMAGE   := $(RUN)/rootimg.01
DEBIAN  := $(RUN)/debian.img
FLOOR   ?= ../shared/bench/floor.c

.PHONY: all build image root boot debian boot-debian test unit integration bench deps clean lint

all: build image root

# run/kernel, run/vps and run/vkctl (release build: optimised, with symbols and line tables), and gdb's
# set-up: run/gdbinit and the vk-ps/vk-proc/vk-trace commands it loads (tools/gdb).
build:
	$(CARGO) build --release --locked -p kernel -p tools
	@mkdir -p $(RUN)
	install -m 755 $(RELEASE)/kernel $(RELEASE)/vps $(RELEASE)/vkctl $(RUN)/
	install -m 644 tools/gdb/vk-gdb.py $(RUN)/
	sed 's|@RUN@|$(abspath $(RUN))|' tools/gdb/gdbinit.in > $(RUN)/gdbinit

# run/rootimg.01: the root image (ext2, made by mke2fs -d from rootimg/).
image: root
	rootimg/build.sh $(IMAGE) 64M $(RUN)/root

# run/root: the same tree as a host directory, for `kernel -r run/root` (hostfs) and the tests.
root: deps
	@mkdir -p $(RUN)
	rootimg/stage.sh $(RUN)/root

# The seed's command: boot the kernel on the root image.
boot: all
	cd $(RUN) && ./kernel -m 64m -r rootimg.01 -n 2

# run/debian.img: Debian bookworm made by mmdebstrap from Debian's mirror (network needed),
# configured for vk by rootimg/debian/. Built once; rebuilt only when its recipe changes.
debian: deps
	rootimg/debian/build.sh $(DEBIAN)

# Boot it (root's password is root); the changes go to the image.
boot-debian: build debian
	cd $(RUN) && ./kernel -m 256m -r debian.img -n 2

# Every test: unit tests of all crates, then integration tests that run the built binaries.
test: deps all debian
	VK_RUN=$(CURDIR)/$(RUN) $(CARGO) test --release --locked --workspace

# vk against the host: bench/vkbench.c natively and under run/kernel, and the host's own floor
# (FLOOR, outside the repository; skipped when missing). BENCH_SCALE=n multiplies iterations.
bench: deps all
	RUN=$(RUN) FLOOR='$(FLOOR)' bench/run.sh

lint:
	$(CARGO) clippy --release --locked --workspace --all-targets -- -D warnings

deps:
	@scripts/ensure-deps

clean:
	$(CARGO) clean
	rm -rf $(RUN)
