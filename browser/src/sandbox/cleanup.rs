//! Removing a directory tree a renderer controlled, whatever it holds.
//!
//! `std::fs::remove_dir_all` recurses once per level: a renderer that left a 15,000-deep chain
//! of directories overflowed the cleanup thread's stack and aborted the browser. [`remove_tree`]
//! works with descriptors (`openat`/`unlinkat`, never a path longer than one name, never a
//! symbolic link followed) and at most [`MAX_DEPTH`] open directories: a directory found deeper
//! is moved up to the top of the tree (`renameat` within the same file system) and removed from
//! there later, so depth costs neither stack nor descriptors.
//!
//! Inside the sandbox a renderer's temporary files live on its own tmpfs, which the kernel frees
//! with the namespace; this is for renderers that run without namespaces, and for stale runtime
//! directories of browsers that were killed.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Open directories at once, at most.
pub const MAX_DEPTH: usize = 64;

/// Removes `root` and everything under it. Entries that cannot be removed are left (and
/// counted); the walk always ends: each pass visits every entry once, and passes repeat only
/// while they make progress (directories moved to the top during a pass may be missed by that
/// pass's listing of the top).
pub fn remove_tree(root: &Path) -> io::Result<Removed> {
    let c_root = CString::new(root.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    let mut removed = Removed::default();
    let mut hoisted: u64 = 0;
    loop {
        let before = (removed.entries, hoisted);
        removed.failed = 0;
        let top = open_dir(libc::AT_FDCWD, &c_root)?;
        pass(top, &mut removed, &mut hoisted)?;
        match std::fs::remove_dir(root) {
            Ok(()) => return Ok(removed),
            Err(e) if (removed.entries, hoisted) == before => {
                return if removed.failed > 0 {
                    Ok(removed)
                } else {
                    Err(e)
                };
            }
            Err(_) => {}
        }
    }
}

/// One pass over the tree under `top`.
fn pass(top: OwnedFd, removed: &mut Removed, hoisted: &mut u64) -> io::Result<()> {
    let top_raw = top.as_raw_fd();
    // The open directories, each with its name in its parent; `top` first.
    let mut stack: Vec<(OwnedFd, CString)> = vec![(top, CString::default())];
    while let Some((dir, _)) = stack.last() {
        let dir_fd = dir.as_raw_fd();
        let Some((name, is_dir)) = next_entry(dir_fd)? else {
            let (dir, name) = stack.pop().expect("the loop holds an entry");
            drop(dir);
            if let Some((parent, _)) = stack.last() {
                if !try_rmdir(parent.as_raw_fd(), &name, removed) {
                    removed.failed += 1;
                }
            }
            continue;
        };
        if !is_dir {
            // SAFETY: unlinkat on an open directory and a NUL-terminated name.
            if unsafe { libc::unlinkat(dir_fd, name.as_ptr(), 0) } == 0 {
                removed.entries += 1;
            } else if !try_rmdir(dir_fd, &name, removed) {
                removed.failed += 1;
            }
            continue;
        }
        if try_rmdir(dir_fd, &name, removed) {
            continue;
        }
        if stack.len() >= MAX_DEPTH {
            // Too deep to open: move it to the top and take it from there.
            *hoisted += 1;
            let new_name = CString::new(format!(".warren-hoisted-{hoisted}"))
                .expect("no NUL in a formatted name");
            // SAFETY: renameat between two open directories of the same tree.
            let ret = unsafe { libc::renameat(dir_fd, name.as_ptr(), top_raw, new_name.as_ptr()) };
            if ret != 0 {
                removed.failed += 1;
            }
            continue;
        }
        match open_dir(dir_fd, &name) {
            Ok(child) => stack.push((child, name)),
            Err(_) => removed.failed += 1,
        }
    }
    Ok(())
}

/// What [`remove_tree`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub entries: u64,
    /// Entries that could not be removed (and were left).
    pub failed: u64,
}

/// Removes `root` on a thread of its own, logging what it could not remove. The caller never
/// waits.
pub fn remove_in_background(root: std::path::PathBuf) {
    if root.as_os_str().is_empty() {
        return;
    }
    let spawned =
        std::thread::Builder::new()
            .name("cleanup".into())
            .spawn(move || match remove_tree(&root) {
                Ok(r) if r.failed == 0 => {}
                Ok(r) => log::warn!(
                    "left {} entries of {} that could not be removed",
                    r.failed,
                    root.display()
                ),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => log::warn!("cannot remove {}: {e}", root.display()),
            });
    if let Err(e) = spawned {
        log::warn!("cannot start a cleanup thread: {e}");
    }
}

fn try_rmdir(dir: RawFd, name: &CStr, removed: &mut Removed) -> bool {
    // SAFETY: unlinkat(AT_REMOVEDIR) on an open directory and a NUL-terminated name.
    if unsafe { libc::unlinkat(dir, name.as_ptr(), libc::AT_REMOVEDIR) } == 0 {
        removed.entries += 1;
        true
    } else {
        false
    }
}

fn open_dir(parent: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: openat returns a new descriptor or -1; O_NOFOLLOW keeps links from being entered.
    let fd = unsafe {
        libc::openat(
            parent,
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just opened, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The next entry of an open directory (not `.` or `..`), read with `getdents64` so the
/// directory's position lives in its descriptor, and whether it is a directory.
fn next_entry(dir: RawFd) -> io::Result<Option<(CString, bool)>> {
    // One entry at a time keeps no buffer across calls: the descriptor's offset advances past
    // exactly what was returned.
    let mut buf = [0u8; 512];
    loop {
        // Read a single record: ask for the smallest buffer that fits one (dirent64 header 19
        // bytes + name up to 255 + NUL, 8-aligned).
        // SAFETY: getdents64 writes at most `buf.len()` bytes into `buf`.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir,
                buf.as_mut_ptr(),
                280usize.min(buf.len()),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Ok(None);
        }
        let n = n as usize;
        // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        let reclen = u16::from_ne_bytes([buf[16], buf[17]]) as usize;
        let d_type = buf[18];
        let name_bytes = &buf[19..reclen.min(n)];
        let end = name_bytes
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(name_bytes.len());
        let name = &name_bytes[..end];
        if reclen < n {
            // More than one record came back; rewind to the start of the second so it is
            // returned next time.
            let d_off = i64::from_ne_bytes(buf[8..16].try_into().expect("8 bytes"));
            // SAFETY: lseek on our own directory descriptor to an offset the kernel gave us.
            unsafe { libc::lseek(dir, d_off, libc::SEEK_SET) };
        }
        if name == b"." || name == b".." {
            continue;
        }
        let is_dir = match d_type {
            libc::DT_DIR => true,
            libc::DT_UNKNOWN => {
                let c = CString::new(name).expect("no NUL in a directory entry name");
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                // SAFETY: fstatat without following links into a zeroed stat buffer.
                let ret =
                    unsafe { libc::fstatat(dir, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
                ret == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFDIR
            }
            _ => false,
        };
        return Ok(Some((
            CString::new(name).expect("no NUL in a directory entry name"),
            is_dir,
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_a_chain_deeper_than_any_stack() {
        let root = tempfile::tempdir().unwrap();
        let top = root.path().join("tab");
        std::fs::create_dir(&top).unwrap();
        // 15,000 levels, made with descriptors (the path would exceed PATH_MAX).
        let mut fd = open_dir(
            libc::AT_FDCWD,
            &CString::new(top.as_os_str().as_encoded_bytes()).unwrap(),
        )
        .unwrap();
        let d = CString::new("d").unwrap();
        for _ in 0..15_000 {
            // SAFETY: mkdirat in an open directory.
            assert_eq!(
                unsafe { libc::mkdirat(fd.as_raw_fd(), d.as_ptr(), 0o700) },
                0
            );
            fd = open_dir(fd.as_raw_fd(), &d).unwrap();
        }
        std::fs::write(format!("/proc/self/fd/{}/f", fd.as_raw_fd()), b"x").unwrap();
        drop(fd);
        let removed = remove_tree(&top).unwrap();
        assert_eq!(removed.failed, 0);
        assert_eq!(removed.entries, 15_001);
        assert!(!top.exists());
    }

    #[test]
    fn does_not_follow_links_out_of_the_tree() {
        let root = tempfile::tempdir().unwrap();
        let outside = root.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"x").unwrap();
        let top = root.path().join("tab");
        std::fs::create_dir_all(top.join("a/b")).unwrap();
        std::os::unix::fs::symlink(&outside, top.join("a/link")).unwrap();
        std::os::unix::fs::symlink(&outside, top.join("a/b/link2")).unwrap();
        for i in 0..300 {
            std::fs::write(top.join(format!("a/f{i}")), b"x").unwrap();
        }
        remove_tree(&top).unwrap();
        assert!(!top.exists());
        assert!(outside.join("keep").exists());
    }
}
