//! The `wasi:filesystem` calls that consume space, wrapped to charge the guest's
//! [`DiskQuota`] first: each is wasmtime-wasi's own implementation behind a charge, linked
//! over the original (the linker allows the shadowing for these names only).

use bytes::Bytes;
use std::sync::Arc;
use wasmtime::component::{Linker, Resource};
use wasmtime::{Result, StoreContextMut};
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    Descriptor, DescriptorFlags, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{DynOutputStream, FsResult, OutputStream, Pollable, StreamError, StreamResult};

use super::disk_quota::DiskQuota;
use super::guest::GuestState;

/// The interface, at the version wasmtime-wasi implements (older 0.2 imports resolve to it).
const TYPES: &str = "wasi:filesystem/types@0.2.12";

/// A filesystem call's result as the guest gets it: an error code is a value, anything
/// else traps.
fn to_guest<T>(result: FsResult<T>) -> Result<(std::result::Result<T, ErrorCode>,)> {
    match result {
        Ok(value) => Ok((Ok(value),)),
        Err(error) => Ok((Err(error.downcast()?),)),
    }
}

/// Over the quota: the guest gets `insufficient-space`, as on a full disk, and nothing is
/// written.
fn refused<T>() -> Result<(std::result::Result<T, ErrorCode>,)> {
    Ok((Err(ErrorCode::InsufficientSpace),))
}

/// Links the charged versions of the space-consuming calls over wasmtime-wasi's own.
pub(super) fn link_disk_quota(linker: &mut Linker<GuestState>) -> Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(TYPES)?;
    types.func_wrap(
        "[method]descriptor.write-via-stream",
        |mut store: StoreContextMut<'_, GuestState>, (fd, offset): (Resource<Descriptor>, u64)| {
            let opened = HostDescriptor::write_via_stream(&mut store.data_mut().filesystem(), fd, offset);
            wrap_stream(store.data_mut(), opened)
        },
    )?;
    types.func_wrap(
        "[method]descriptor.append-via-stream",
        |mut store: StoreContextMut<'_, GuestState>, (fd,): (Resource<Descriptor>,)| {
            let opened = HostDescriptor::append_via_stream(&mut store.data_mut().filesystem(), fd);
            wrap_stream(store.data_mut(), opened)
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.write",
        |mut store: StoreContextMut<'_, GuestState>, (fd, buffer, offset): (Resource<Descriptor>, Vec<u8>, u64)| {
            Box::new(async move {
                if store.data().disk_quota().charge_bytes(buffer.len() as u64).is_err() {
                    return refused();
                }
                to_guest(HostDescriptor::write(&mut store.data_mut().filesystem(), fd, buffer, offset).await)
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.set-size",
        |mut store: StoreContextMut<'_, GuestState>, (fd, size): (Resource<Descriptor>, u64)| {
            Box::new(async move {
                let current = HostDescriptor::stat(&mut store.data_mut().filesystem(), Resource::new_borrow(fd.rep()))
                    .await
                    .map(|stat| stat.size)
                    .unwrap_or(0);
                if store.data().disk_quota().charge_bytes(size.saturating_sub(current)).is_err() {
                    return refused();
                }
                to_guest(HostDescriptor::set_size(&mut store.data_mut().filesystem(), fd, size).await)
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, GuestState>,
         (fd, path_flags, path, open_flags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                if open_flags.contains(OpenFlags::CREATE) && store.data().disk_quota().charge_entry().is_err() {
                    return refused();
                }
                let mut view = store.data_mut().filesystem();
                to_guest(HostDescriptor::open_at(&mut view, fd, path_flags, path, open_flags, flags).await)
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.create-directory-at",
        |mut store: StoreContextMut<'_, GuestState>, (fd, path): (Resource<Descriptor>, String)| {
            Box::new(async move {
                if store.data().disk_quota().charge_entry().is_err() {
                    return refused();
                }
                to_guest(HostDescriptor::create_directory_at(&mut store.data_mut().filesystem(), fd, path).await)
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.symlink-at",
        |mut store: StoreContextMut<'_, GuestState>, (fd, target, path): (Resource<Descriptor>, String, String)| {
            Box::new(async move {
                if store.data().disk_quota().charge_entry().is_err() {
                    return refused();
                }
                to_guest(HostDescriptor::symlink_at(&mut store.data_mut().filesystem(), fd, target, path).await)
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.link-at",
        |mut store: StoreContextMut<'_, GuestState>,
         (fd, old_flags, old_path, new_fd, new_path): (
            Resource<Descriptor>,
            PathFlags,
            String,
            Resource<Descriptor>,
            String,
        )| {
            Box::new(async move {
                if store.data().disk_quota().charge_entry().is_err() {
                    return refused();
                }
                let mut view = store.data_mut().filesystem();
                to_guest(HostDescriptor::link_at(&mut view, fd, old_flags, old_path, new_fd, new_path).await)
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Puts the quota between a file's new output stream and the guest.
fn wrap_stream(
    state: &mut GuestState,
    opened: FsResult<Resource<DynOutputStream>>,
) -> Result<(std::result::Result<Resource<DynOutputStream>, ErrorCode>,)> {
    let stream = match opened {
        Ok(stream) => stream,
        Err(error) => return to_guest(Err(error)),
    };
    let quota = state.disk_quota();
    let table = state.table();
    let inner: DynOutputStream = table.delete(stream)?;
    let charged: DynOutputStream = Box::new(ChargedStream { inner, quota });
    Ok((Ok(table.push(charged)?),))
}

/// A file's output stream that charges every byte before passing it on.
struct ChargedStream {
    inner: DynOutputStream,
    quota: Arc<DiskQuota>,
}

impl ChargedStream {
    fn charge(&self, bytes: usize) -> StreamResult<()> {
        self.quota
            .charge_bytes(bytes as u64)
            .map_err(|over| StreamError::LastOperationFailed(over.to_io_error().into()))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for ChargedStream {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for ChargedStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.charge(bytes.len())?;
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn blocking_write_and_flush(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.charge(bytes.len())?;
        self.inner.blocking_write_and_flush(bytes).await
    }

    fn write_zeroes(&mut self, count: usize) -> StreamResult<()> {
        self.charge(count)?;
        self.inner.write_zeroes(count)
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}
