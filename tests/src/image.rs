//! A private copy of the root image for a test that boots and changes it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bin;

/// A fresh directory with a copy of the root image in it (removed when dropped).
pub struct ImageCopy {
    pub dir: PathBuf,
    pub image: PathBuf,
}

impl ImageCopy {
    pub fn new(tag: &str) -> ImageCopy {
        let dir = std::env::temp_dir().join(format!("vk-ext2-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("make temp dir");
        let image = dir.join("root.img");
        std::fs::copy(bin("rootimg.01"), &image).expect("copy the root image");
        ImageCopy { dir, image }
    }

    pub fn path(&self) -> &str {
        self.image.to_str().expect("utf-8 temp path")
    }
}

impl Drop for ImageCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}


impl ImageCopy {
    /// `e2fsck -fn` on the copy: (exit code, its output).
    pub fn fsck(&self) -> (Option<i32>, String) {
        e2fsck(&self.image)
    }
}

/// `e2fsck -fn IMAGE` (never changes it): (exit code, stdout and stderr).
pub fn e2fsck(image: &Path) -> (Option<i32>, String) {
    let o = Command::new("e2fsck").args(["-fn"]).arg(image).output().expect("run e2fsck (e2fsprogs)");
    (o.status.code(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}
