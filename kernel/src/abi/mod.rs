//! The Linux x86-64 ABI as it crosses into guest memory: `#[repr(C)]` structures with
//! `zerocopy` derives (safe byte views, no `unsafe`), each checked at compile time against
//! the `linux-raw-sys` definition of the same structure — size and every field's offset —
//! by [`linux_struct!`]. Hand-written byte offsets have no place in the kernel: a structure
//! the guest reads or writes is declared here and copied whole with
//! [`UserPtr`](crate::vm::uaccess::UserPtr).
//!
//! Why our own types rather than `linux_raw_sys`'s directly: zerocopy's traits cannot be
//! derived for another crate's types, and some of those carry raw pointers (`iovec`) that
//! are not plain bytes. The mirror types use integers for guest pointers (`u64`), and the
//! compile-time checks keep them the same layout as the kernel's headers.
//!
//! Constants (errno values, flag bits, signal numbers) come from `linux_raw_sys` directly.
//!
//! | file        | what it holds                                                    |
//! |-------------|-------------------------------------------------------------------|
//! | `time.rs`   | timespec, timeval, itimerval, timezone                            |
//! | `fs.rs`     | stat, statx, statfs, dirent64 header, iovec                        |
//!
//! Other families add a file each (signals, process, terminal) as they are typed.

pub mod fs;
pub mod time;

pub use linux_raw_sys::general as linux;

/// Declare a `#[repr(C)]` guest structure that mirrors `linux_raw_sys`'s `$sys`: the same
/// field names in the same order, each with the plain integer type of its width. The
/// expansion derives zerocopy's byte conversions and asserts at compile time that the size
/// and every field offset equal the `linux-raw-sys` ones (so a missing, reordered or
/// mistyped field does not compile). `IntoBytes` also proves there is no hidden padding.
macro_rules! linux_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident = $sys:ty {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq,
            zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout,
        )]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        const _: () = {
            assert!(core::mem::size_of::<$name>() == core::mem::size_of::<$sys>());
            $(
                assert!(core::mem::offset_of!($name, $field) == core::mem::offset_of!($sys, $field));
                assert!(
                    $crate::abi::field_size(|s: &$name| &s.$field)
                        == $crate::abi::field_size(|s: &$sys| &s.$field)
                );
            )*
        };

        impl Default for $name {
            fn default() -> Self {
                <Self as zerocopy::FromZeros>::new_zeroed()
            }
        }
    };
}
pub(crate) use linux_struct;

/// The size of the field a projection returns (for [`linux_struct!`]'s checks: the
/// projection is never called, only its type is read).
pub const fn field_size<T, F>(_project: fn(&T) -> &F) -> usize {
    core::mem::size_of::<F>()
}
