"""The test guest: a Debian kernel + a busybox/qemu-ga initramfs, built from packages at first use and cached."""
