//! What differs between Unix and Windows, in one place: opening a file without following a
//! symbolic link, positional reads and writes, file modes, making a symbolic link, and waiting
//! out a file that another program holds open (Windows refuses to rename or delete it then).
//! Everything else in facehugger is the same code on every platform.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;
use std::time::Duration;

/// Opens `path` as `options` say, but never through a symbolic link: a link planted there is
/// an error, and nothing it points to is opened or created.
///
/// Unix: the platform's own `O_NOFOLLOW` (its value differs between architectures: 0o400000 on
/// x86, 0o100000 on arm64), plus `O_NONBLOCK` so that a FIFO planted there does not block the
/// open (it changes nothing for a regular file). Windows: `FILE_FLAG_OPEN_REPARSE_POINT` opens
/// a link itself rather than what it points to; what was opened is then checked.
pub(crate) fn open_no_follow(
    options: &mut OpenOptions,
    path: impl AsRef<Path>,
) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
        options.open(path)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        use windows_sys::Win32::Storage::FileSystem::FILE_FLAG_OPEN_REPARSE_POINT;
        options.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
        let file = options.open(path)?;
        if file.metadata()?.file_type().is_symlink() {
            return Err(io::Error::other("it is a symbolic link"));
        }
        Ok(file)
    }
    #[cfg(not(any(unix, windows)))]
    {
        options.open(path)
    }
}

/// Sets the mode a file is created with (Unix; Windows has no modes: files get the folder's
/// access rules).
pub(crate) fn with_mode(options: &mut OpenOptions, mode: u32) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options
}

/// Sets an open file's mode, whatever the umask made of it (Unix; nothing on Windows).
pub(crate) fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (file, mode);
        Ok(())
    }
}

/// A path's permission bits (Unix); on Windows 0o444 for a read-only file, else 0o644.
pub(crate) fn mode_of(meta: &fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o7777
    }
    #[cfg(not(unix))]
    {
        if meta.permissions().readonly() {
            0o444
        } else {
            0o644
        }
    }
}

/// Sets a path's permission bits (Unix); on Windows only whether it is read-only (no write bit).
pub(crate) fn set_path_mode(path: impl AsRef<Path>, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let mut permissions = fs::metadata(path.as_ref())?.permissions();
        permissions.set_readonly(mode & 0o200 == 0);
        fs::set_permissions(path, permissions)
    }
}

/// The owner (uid) and permission bits of what `meta` describes; `None` on Windows.
pub(crate) fn owner_and_mode(meta: &fs::Metadata) -> Option<(u32, u32)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.uid(), meta.mode() & 0o7777))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// What tells whether a folder changed: its device and inode, and the modification and
/// change times (seconds, nanoseconds) that any entry made, removed or renamed in it moves on.
/// `None` on Windows, where std gives no change time or file id (a folder there is always
/// listed).
pub(crate) fn folder_state(meta: &fs::Metadata) -> Option<[i64; 6]> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // Device and inode numbers are below 2^63 on every Unix facehugger runs on.
        Some([
            meta.dev() as i64,
            meta.ino() as i64,
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
        ])
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// The user this process runs as (its effective uid); `None` on Windows.
pub(crate) fn user_id() -> Option<u32> {
    #[cfg(unix)]
    {
        Some(rustix::process::geteuid().as_raw())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Reads into `buffer` from `offset`, without using (or, on Unix, moving) the file's cursor;
/// returns the bytes read, 0 at the end of the file. Several threads may read and write one
/// file at once this way.
pub(crate) fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        #[cfg(unix)]
        let read = std::os::unix::fs::FileExt::read_at(file, buffer, offset);
        // `seek_read` moves the cursor as well; callers that mix the two seek first.
        #[cfg(windows)]
        let read = std::os::windows::fs::FileExt::seek_read(file, buffer, offset);
        match read {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Writes all of `buffer` at `offset` (see [`read_at`]).
pub(crate) fn write_all_at(file: &File, buffer: &[u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, buffer, offset)
    }
    #[cfg(windows)]
    {
        let (mut buffer, mut offset) = (buffer, offset);
        while !buffer.is_empty() {
            match std::os::windows::fs::FileExt::seek_write(file, buffer, offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    buffer = &buffer[written..];
                    offset += written as u64;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

/// Makes `link` a symbolic link to the file `target` (relative to the link's folder). On
/// Windows this needs Developer Mode or an elevated process, and some emulations (Wine) report
/// success without making anything: callers check, see [`made_link`].
pub(crate) fn symlink_file(target: &str, link: impl AsRef<Path>) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(target, link)
    }
    #[cfg(windows)]
    {
        std::os::windows::fs::symlink_file(target, link)
    }
}

/// Whether `link` is a symbolic link whose text is `target`: how a link just made is trusted.
pub(crate) fn made_link(link: impl AsRef<Path>, target: &str) -> bool {
    fs::read_link(link).is_ok_and(|found| found.as_os_str() == target)
}

/// The separator of the paths a symbolic link holds: the reference client makes its links with
/// `os.path.relpath`, so `\` on Windows.
pub(crate) const LINK_SEPARATOR: &str = if cfg!(windows) { "\\" } else { "/" };

/// How long to wait, attempt after attempt, for a file another program holds open: about a
/// second in all, enough for an indexer or a virus scanner to let go.
const BUSY_WAITS: [Duration; 6] = [
    Duration::from_millis(20),
    Duration::from_millis(40),
    Duration::from_millis(80),
    Duration::from_millis(160),
    Duration::from_millis(300),
    Duration::from_millis(400),
];

/// `fs::rename`, waiting out a file in use (see [`when_free`]). Every rename in the cache goes
/// through it.
pub(crate) fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    when_free(|| fs::rename(from.as_ref(), to.as_ref()))
}

/// `fs::remove_file`, waiting out a file in use (see [`when_free`]).
pub(crate) fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    when_free(|| fs::remove_file(path.as_ref()))
}

/// `fs::remove_dir`, waiting out a folder in use (see [`when_free`]).
pub(crate) fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    when_free(|| fs::remove_dir(path.as_ref()))
}

/// `fs::remove_dir_all`, waiting out a file in use (see [`when_free`]).
pub(crate) fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    when_free(|| fs::remove_dir_all(path.as_ref()))
}

/// Runs `op`, a rename or a removal; while it fails because another program has the file
/// open (Windows: a sharing violation, or access denied, which is how Windows answers the
/// removal of a file that is still open or is pending deletion), waits a little and tries
/// again, about a second in all. If the file is still in use then, the error says so. Unix
/// renames and removes open files, so there it runs `op` once.
fn when_free<T>(op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    retry_while(op, is_in_use, &BUSY_WAITS, std::thread::sleep)
}

/// Runs `op`, waiting `waits` in turn while `busy` says (with why) that it failed on a file in
/// use; the last failure says why, and how long it waited.
fn retry_while<T>(
    mut op: impl FnMut() -> io::Result<T>,
    busy: impl Fn(&io::Error) -> Option<Busy>,
    waits: &[Duration],
    mut sleep: impl FnMut(Duration),
) -> io::Result<T> {
    for &wait in waits {
        match op() {
            Err(err) if busy(&err).is_some() => sleep(wait),
            done => return done,
        }
    }
    op().map_err(|err| {
        let ms = waits.iter().sum::<Duration>().as_millis();
        let message = match busy(&err) {
            None => return err,
            Some(Busy::Open) => format!(
                "{err}: another program still has it open after {ms} ms (an editor, a virus \
                 scanner, a running model?); close it and try again"
            ),
            Some(Busy::Denied) => format!(
                "{err}: still denied after {ms} ms: another program may have it open (an editor, \
                 a virus scanner, a running model?), or it is read-only or not this user's to \
                 change"
            ),
        };
        io::Error::new(err.kind(), message)
    })
}

/// How a file in use made an operation fail.
#[cfg_attr(not(windows), allow(dead_code))]
enum Busy {
    /// Another program has it open (a sharing or lock violation).
    Open,
    /// Access denied: how Windows answers the removal of a file still open or pending
    /// deletion, and also a file this user may not change.
    Denied,
}

/// Whether `err` says the file is in use by another program (Windows only), and how.
fn is_in_use(err: &io::Error) -> Option<Busy> {
    #[cfg(windows)]
    {
        use windows_sys::Win32::Foundation::{
            ERROR_ACCESS_DENIED, ERROR_LOCK_VIOLATION, ERROR_SHARING_VIOLATION,
        };
        match err.raw_os_error().map(|code| code as u32) {
            Some(ERROR_SHARING_VIOLATION | ERROR_LOCK_VIOLATION) => Some(Busy::Open),
            Some(ERROR_ACCESS_DENIED) => Some(Busy::Denied),
            _ => None,
        }
    }
    #[cfg(not(windows))]
    {
        let _ = err;
        None
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn busy() -> io::Error {
        io::Error::new(io::ErrorKind::ResourceBusy, "in use")
    }

    fn is_busy(err: &io::Error) -> Option<Busy> {
        match err.kind() {
            io::ErrorKind::ResourceBusy => Some(Busy::Open),
            io::ErrorKind::PermissionDenied => Some(Busy::Denied),
            _ => None,
        }
    }

    #[test]
    fn a_file_in_use_is_waited_for() {
        let calls = Cell::new(0);
        let slept = Cell::new(Duration::ZERO);
        let result = retry_while(
            || {
                calls.set(calls.get() + 1);
                if calls.get() < 4 { Err(busy()) } else { Ok(7) }
            },
            is_busy,
            &BUSY_WAITS,
            |wait| slept.set(slept.get() + wait),
        );
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls.get(), 4);
        assert_eq!(slept.get(), Duration::from_millis(20 + 40 + 80));
    }

    #[test]
    fn a_file_in_use_for_too_long_is_an_error_that_says_so() {
        let calls = Cell::new(0);
        let slept = Cell::new(Duration::ZERO);
        let error = retry_while(
            || -> io::Result<()> {
                calls.set(calls.get() + 1);
                Err(busy())
            },
            is_busy,
            &BUSY_WAITS,
            |wait| slept.set(slept.get() + wait),
        )
        .unwrap_err();
        assert_eq!(calls.get(), BUSY_WAITS.len() + 1);
        assert_eq!(slept.get(), Duration::from_millis(1000));
        assert_eq!(error.kind(), io::ErrorKind::ResourceBusy);
        let message = error.to_string();
        assert!(
            message.starts_with("in use: another program still has it open after 1000 ms"),
            "{message}"
        );
        // Denied: maybe in use, maybe not this user's file; the message says both.
        let denied = retry_while(
            || -> io::Result<()> { Err(io::ErrorKind::PermissionDenied.into()) },
            is_busy,
            &BUSY_WAITS,
            |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(
            denied.contains("still denied after 1000 ms: another program may have it open")
                && denied.contains("read-only or not this user's to change"),
            "{denied}"
        );
    }

    #[test]
    fn other_errors_are_not_retried() {
        let calls = Cell::new(0);
        let error = retry_while(
            || -> io::Result<()> {
                calls.set(calls.get() + 1);
                Err(io::ErrorKind::NotFound.into())
            },
            is_busy,
            &BUSY_WAITS,
            |_| panic!("no wait for an error that is not about a file in use"),
        )
        .unwrap_err();
        assert_eq!(calls.get(), 1);
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn renames_and_removals_go_through_the_helper() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, "x").unwrap();
        rename(&a, &b).unwrap();
        assert_eq!(fs::read(&b).unwrap(), b"x");
        remove_file(&b).unwrap();
        assert_eq!(remove_file(&b).unwrap_err().kind(), io::ErrorKind::NotFound);
        fs::create_dir_all(dir.path().join("d/e")).unwrap();
        remove_dir(dir.path().join("d/e")).unwrap();
        remove_dir_all(dir.path().join("d")).unwrap();
        assert!(!dir.path().join("d").exists());
    }

    #[test]
    fn positional_reads_and_writes_leave_each_other_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("f"))
            .unwrap();
        write_all_at(&file, b"world", 6).unwrap();
        write_all_at(&file, b"hello ", 0).unwrap();
        let mut buffer = [0u8; 11];
        assert_eq!(read_at(&file, &mut buffer, 0).unwrap(), 11);
        assert_eq!(&buffer, b"hello world");
        assert_eq!(read_at(&file, &mut buffer, 11).unwrap(), 0);
    }

    /// Goes through the open itself, not a check before it: with a wrong no-follow flag (the
    /// x86 value 0o400000 is `O_LARGEFILE` on arm64) the link would be followed and this fails.
    /// `scripts/cross-check arm64-tests` runs it on arm64, under qemu-user.
    #[test]
    fn opening_refuses_a_planted_link_on_this_architecture() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, "secret").unwrap();
        let link = dir.path().join("link");
        if symlink_file("target", &link).is_err() || !made_link(&link, "target") {
            // Windows without Developer Mode: no link can be planted, nor followed.
            return;
        }
        let read = open_no_follow(OpenOptions::new().read(true), &link);
        assert!(read.is_err(), "a link was opened for reading");
        let write = open_no_follow(OpenOptions::new().write(true), &link);
        assert!(write.is_err(), "a link was opened for writing");
        // Creating through a dangling link creates nothing where it points.
        let dangling = dir.path().join("dangling");
        symlink_file("nowhere", &dangling).unwrap();
        let created = open_no_follow(OpenOptions::new().write(true).create(true), &dangling);
        assert!(created.is_err());
        assert!(!dir.path().join("nowhere").exists());
        // A regular file opens.
        assert!(open_no_follow(OpenOptions::new().read(true), &target).is_ok());
        #[cfg(unix)]
        assert_eq!(
            read.unwrap_err().raw_os_error(),
            Some(libc::ELOOP),
            "O_NOFOLLOW refuses a link with ELOOP"
        );
    }
}
