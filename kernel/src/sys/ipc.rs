//! System V IPC from the system call side: shmget/shmat/shmdt/shmctl, semget/semop/
//! semtimedop/semctl, msgget/msgsnd/msgrcv/msgctl. The objects are kern/sysv's; this file
//! moves the arguments and structures across, and maps segments into the address space.
//! Every ctl command takes glibc's IPC_64 bit (the 64-bit structures are the only ones).

use platform::stub::layout::USER_END;

use crate::abi::ipc::{
    GETALL, GETNCNT, GETPID, GETVAL, GETZCNT, IPC_INFO, IPC_PRIVATE, IPC_RMID, IPC_SET, IPC_STAT, MSG_INFO, MSG_STAT,
    MSG_STAT_ANY, MsgInfo, MsqidDs, SEM_INFO, SEM_STAT, SEM_STAT_ANY, SETALL, SETVAL, SHM_DEST, SHM_EXEC, SHM_INFO,
    SHM_LOCK, SHM_LOCKED, SHM_RDONLY, SHM_REMAP, SHM_RND, SHM_STAT, SHM_STAT_ANY, SHM_UNLOCK, SemInfo, Sembuf, SemidDs,
    ShmInfo64, ShmUsage, ShmidDs,
};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::sysv::{ctl_cmd, msg, now_secs, sem, shm};
use crate::vm::space::{Backing, MMAP_MIN, MapEntry, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, page_up};
use crate::vm::uaccess::UserPtr;
use linux_raw_sys::general::{CAP_IPC_LOCK, CAP_SYS_RESOURCE};

/// SHMLBA on x86-64: a page.
const SHMLBA: u64 = PAGE;

/// A limit as the C int the *info structures hold.
fn int(v: usize) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn id_result(id: i32) -> SysResult {
    usize::try_from(id).map_err(|_| Errno::EINVAL)
}

// --- shared memory ---

pub fn sys_shmget(ctx: &mut Ctx<'_>) -> SysResult {
    let cred = ctx.p.user().cred();
    id_result(shm::get(ctx.int(0), ctx.arg(1), ctx.uint(2), &cred, ctx.p.pid)?)
}

pub fn sys_shmat(ctx: &mut Ctx<'_>) -> SysResult {
    let (id, mut addr, flags) = (ctx.int(0), ctx.arg(1), ctx.uint(2));
    if id < 0 {
        return Err(Errno::EINVAL);
    }
    if addr != 0 {
        if !addr.is_multiple_of(SHMLBA) {
            if flags & SHM_RND == 0 {
                return Err(Errno::EINVAL);
            }
            addr &= !(SHMLBA - 1);
            if addr == 0 && flags & SHM_REMAP != 0 {
                return Err(Errno::EINVAL);
            }
        }
    } else if flags & SHM_REMAP != 0 {
        return Err(Errno::EINVAL);
    }
    let mut prot = PROT_READ;
    let mut want = 0o444;
    if flags & SHM_RDONLY == 0 {
        prot |= PROT_WRITE;
        want |= 0o222;
    }
    if flags & SHM_EXEC != 0 {
        prot |= PROT_EXEC;
        want |= 0o111;
    }
    let cred = ctx.p.user().cred();
    let (object, size, key) = shm::with(|ids| {
        let (perm, seg) = ids.get(id)?;
        perm.check(&cred, want)?;
        Ok::<_, Errno>((seg.object.clone(), seg.size, perm.key))
    })?;
    let len = page_up(size).ok_or(Errno::ENOMEM)?;
    let name = format!("/SYSV{:08x} (deleted)", key.cast_unsigned()).into_bytes();
    let vm = ctx.p.user().vm();
    let start = {
        let mut g = vm.write();
        let start = if addr != 0 {
            let end = addr.checked_add(len).filter(|&e| e <= USER_END).ok_or(Errno::EINVAL)?;
            crate::kern::callsite::release_table(&mut g, addr, end);
            if flags & SHM_REMAP == 0 && !g.is_free(addr, end) {
                return Err(Errno::EINVAL);
            }
            if addr < MMAP_MIN {
                return Err(Errno::EPERM);
            }
            addr
        } else {
            g.find_free(len, g.mmap_base).ok_or(Errno::ENOMEM)?
        };
        g.map(MapEntry { start, end: start + len, prot, backing: Backing::Shared { object, offset: 0 }, name });
        start
    };
    shm::with(|ids| {
        if let Ok((_, seg)) = ids.get(id) {
            seg.atime = now_secs();
            seg.lpid = ctx.p.pid;
        }
    });
    usize::try_from(start).map_err(|_| Errno::ENOMEM)
}

pub fn sys_shmdt(ctx: &mut Ctx<'_>) -> SysResult {
    let addr = ctx.arg(0);
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let vm = ctx.p.user().vm();
    let mut g = vm.write();
    let Some(Backing::Shared { object, offset: 0 }) =
        g.find(addr).filter(|e| e.start == addr).map(|e| e.backing.clone())
    else {
        return Err(Errno::EINVAL);
    };
    let Some((id, size)) = shm::with(|ids| {
        ids.iter_mut().find(|(_, _, s)| std::sync::Arc::ptr_eq(&s.object, &object)).map(|(id, _, s)| (id, s.size))
    }) else {
        return Err(Errno::EINVAL);
    };
    let end = addr.saturating_add(page_up(size).unwrap_or(u64::MAX));
    // Every piece of this attachment: the segment's pages at their own offset from addr.
    let pieces: Vec<(u64, u64)> = g
        .entries()
        .filter(|e| e.start >= addr && e.start < end)
        .filter(|e| matches!(&e.backing, Backing::Shared { object: o, offset } if std::sync::Arc::ptr_eq(o, &object) && *offset == e.start - addr))
        .map(|e| (e.start, e.end))
        .collect();
    drop(object);
    for (s, e) in pieces {
        g.unmap(s, e);
    }
    drop(g);
    shm::with(|ids| {
        if let Ok((_, seg)) = ids.get(id) {
            seg.dtime = now_secs();
            seg.lpid = ctx.p.pid;
        }
    });
    Ok(0)
}

pub fn sys_shmctl(ctx: &mut Ctx<'_>) -> SysResult {
    let (id, cmd) = (ctx.int(0), ctl_cmd(ctx.int(1)));
    let cred = ctx.p.user().cred();
    match cmd {
        IPC_INFO => {
            let (info, max) = shm::with(|ids| {
                let info = ShmInfo64 {
                    shmmax: shm::SHMMAX,
                    shmmin: shm::SHMMIN,
                    shmmni: shm::SHMMNI as u64,
                    shmseg: shm::SHMMNI as u64,
                    shmall: shm::SHMALL,
                    ..ShmInfo64::default()
                };
                (info, ids.max_index())
            });
            ctx.write(ctx.ptr(2), &info)?;
            Ok(max)
        }
        SHM_INFO => {
            let (info, max) = shm::with(|ids| {
                let info = ShmUsage {
                    used_ids: i32::try_from(ids.count()).unwrap_or(i32::MAX),
                    shm_tot: shm::total_pages(ids),
                    shm_rss: ids.iter_mut().map(|(_, _, s)| s.object.resident_pages()).sum(),
                    ..ShmUsage::default()
                };
                (info, ids.max_index())
            });
            ctx.write(ctx.ptr(2), &info)?;
            Ok(max)
        }
        IPC_STAT | SHM_STAT | SHM_STAT_ANY => {
            let (ds, full_id) = shm::with(|ids| {
                let (full, perm, seg) = if cmd == IPC_STAT {
                    let (p, s) = ids.get(id)?;
                    (0, p, s)
                } else {
                    ids.at_index(id)?
                };
                if cmd != SHM_STAT_ANY {
                    perm.check(&cred, 0o444)?;
                }
                Ok::<_, Errno>((seg.stat(perm), full))
            })?;
            ctx.write(ctx.ptr::<ShmidDs>(2), &ds)?;
            if cmd == IPC_STAT { Ok(0) } else { id_result(full_id) }
        }
        IPC_SET => {
            let ds: ShmidDs = ctx.read(ctx.ptr(2))?;
            shm::with(|ids| {
                let (perm, seg) = ids.get(id)?;
                perm.may_change(&cred)?;
                perm.set(&ds.shm_perm);
                seg.ctime = now_secs();
                Ok(0)
            })
        }
        IPC_RMID => shm::with(|ids| {
            let (perm, seg) = ids.get(id)?;
            perm.may_change(&cred)?;
            if seg.nattch() == 0 {
                ids.remove(id);
            } else {
                perm.mode |= SHM_DEST;
                perm.key = IPC_PRIVATE;
            }
            Ok(0)
        }),
        SHM_LOCK | SHM_UNLOCK => shm::with(|ids| {
            let (perm, _) = ids.get(id)?;
            // Linux lets the owner lock within RLIMIT_MEMLOCK; vk never pages a segment out,
            // so the flag is all there is to it.
            if !cred.capable(CAP_IPC_LOCK) && cred.euid != perm.uid && cred.euid != perm.cuid {
                return Err(Errno::EPERM);
            }
            if cmd == SHM_LOCK {
                perm.mode |= SHM_LOCKED
            } else {
                perm.mode &= !SHM_LOCKED
            }
            Ok(0)
        }),
        _ => Err(Errno::EINVAL),
    }
}

// --- semaphores ---

pub fn sys_semget(ctx: &mut Ctx<'_>) -> SysResult {
    let cred = ctx.p.user().cred();
    id_result(sem::get(ctx.int(0), ctx.int(1), ctx.uint(2), &cred)?)
}

fn semop(ctx: &Ctx<'_>, deadline: Option<u64>) -> SysResult {
    let (id, nsops) = (ctx.int(0), ctx.size(2));
    if id < 0 || nsops == 0 {
        return Err(Errno::EINVAL);
    }
    if nsops > sem::SEMOPM {
        return Err(Errno::E2BIG);
    }
    let ops = ctx.read_slice(ctx.slice::<Sembuf>(1, 2), sem::SEMOPM)?;
    let cred = ctx.p.user().cred();
    sem::semop(id, &ops, ctx.p.pid, &cred, deadline)
}

pub fn sys_semop(ctx: &mut Ctx<'_>) -> SysResult {
    semop(ctx, None)
}

pub fn sys_semtimedop(ctx: &mut Ctx<'_>) -> SysResult {
    let deadline = ctx.timeout_ns(3)?.map(|ns| platform::time::uptime_ns().saturating_add(ns));
    semop(ctx, deadline)
}

pub fn sys_semctl(ctx: &mut Ctx<'_>) -> SysResult {
    let (id, num, cmd, arg) = (ctx.int(0), ctx.int(1), ctl_cmd(ctx.int(2)), ctx.arg(3));
    let cred = ctx.p.user().cred();
    let pid = ctx.p.pid;
    let buf = UserPtr::<u8>::new(arg);
    match cmd {
        IPC_INFO | SEM_INFO => {
            let (info, max) = sem::with(|st| {
                let mut info = SemInfo {
                    semmap: sem::SEMMAP,
                    semmni: int(sem::SEMMNI),
                    semmns: int(sem::SEMMNS),
                    semmnu: sem::SEMMNU,
                    semmsl: int(sem::SEMMSL),
                    semopm: int(sem::SEMOPM),
                    semume: sem::SEMUME,
                    semusz: sem::SEMUSZ,
                    semvmx: sem::SEMVMX,
                    semaem: sem::SEMAEM,
                };
                if cmd == SEM_INFO {
                    info.semusz = i32::try_from(st.ids.count()).unwrap_or(i32::MAX);
                    info.semaem = i32::try_from(st.ids.iter_mut().map(|(_, _, s)| s.sems.len()).sum::<usize>())
                        .unwrap_or(i32::MAX);
                }
                ((info, st.ids.max_index()), false)
            });
            ctx.write(buf.cast::<SemInfo>(), &info)?;
            Ok(max)
        }
        IPC_STAT | SEM_STAT | SEM_STAT_ANY => {
            let (ds, full) = sem::with(|st| {
                let r = (|| {
                    let (full, perm, set) = if cmd == IPC_STAT {
                        let (p, s) = st.ids.get(id)?;
                        (0, p, s)
                    } else {
                        st.ids.at_index(id)?
                    };
                    if cmd != SEM_STAT_ANY {
                        perm.check(&cred, 0o444)?;
                    }
                    Ok::<_, Errno>((set.stat(perm), full))
                })();
                (r, false)
            })?;
            ctx.write(buf.cast::<SemidDs>(), &ds)?;
            if cmd == IPC_STAT { Ok(0) } else { id_result(full) }
        }
        IPC_SET => {
            let ds: SemidDs = ctx.read(buf.cast())?;
            sem::with(|st| {
                let r = st.ids.get(id).and_then(|(perm, set)| {
                    perm.may_change(&cred)?;
                    perm.set(&ds.sem_perm);
                    set.ctime = now_secs();
                    Ok(0)
                });
                (r, false)
            })
        }
        IPC_RMID => sem::with(|st| {
            let r = st.ids.get(id).and_then(|(perm, _)| perm.may_change(&cred));
            if r.is_err() {
                return (r.map(|_| 0), false);
            }
            st.ids.remove(id);
            st.clear_undo(id, None);
            (Ok(0), true)
        }),
        GETVAL | GETPID | GETNCNT | GETZCNT => sem::with(|st| {
            let r = st.ids.get(id).and_then(|(perm, set)| {
                perm.check(&cred, 0o444)?;
                let s = usize::try_from(num).ok().and_then(|n| set.sems.get(n)).ok_or(Errno::EINVAL)?;
                let v = match cmd {
                    GETVAL => s.val,
                    GETPID => s.pid,
                    GETNCNT => i32::try_from(s.ncnt).unwrap_or(i32::MAX),
                    _ => i32::try_from(s.zcnt).unwrap_or(i32::MAX),
                };
                usize::try_from(v).map_err(|_| Errno::EINVAL)
            });
            (r, false)
        }),
        GETALL => {
            let vals: Vec<u16> = sem::with(|st| {
                let r = st.ids.get(id).and_then(|(perm, set)| {
                    perm.check(&cred, 0o444)?;
                    Ok(set.sems.iter().map(|s| u16::try_from(s.val).unwrap_or(u16::MAX)).collect())
                });
                (r, false)
            })?;
            ctx.write_slice(buf.cast::<u16>().slice(vals.len()), &vals)?;
            Ok(0)
        }
        SETVAL => {
            let val = crate::abi::lower_32_bits(arg).cast_signed();
            sem::with(|st| {
                let r = st.ids.get(id).and_then(|(perm, set)| {
                    perm.check(&cred, 0o222)?;
                    let n = usize::try_from(num).ok().filter(|&n| n < set.sems.len()).ok_or(Errno::EINVAL)?;
                    if !(0..=sem::SEMVMX).contains(&val) {
                        return Err(Errno::ERANGE);
                    }
                    set.sems[n].val = val;
                    set.sems[n].pid = pid;
                    set.ctime = now_secs();
                    Ok(n)
                });
                match r {
                    Ok(n) => {
                        st.clear_undo(id, Some(n));
                        (Ok(0), true)
                    }
                    Err(e) => (Err(e), false),
                }
            })
        }
        SETALL => {
            let n = sem::with(|st| (st.ids.get(id).map(|(_, set)| set.sems.len()), false))?;
            let vals = ctx.read_slice(buf.cast::<u16>().slice(n), sem::SEMMSL)?;
            sem::with(|st| {
                let r = st.ids.get(id).and_then(|(perm, set)| {
                    perm.check(&cred, 0o222)?;
                    if set.sems.len() != vals.len() {
                        return Err(Errno::EIDRM);
                    }
                    if vals.iter().any(|&v| i32::from(v) > sem::SEMVMX) {
                        return Err(Errno::ERANGE);
                    }
                    for (s, &v) in set.sems.iter_mut().zip(&vals) {
                        s.val = i32::from(v);
                        s.pid = pid;
                    }
                    set.ctime = now_secs();
                    Ok(())
                });
                match r {
                    Ok(()) => {
                        st.clear_undo(id, None);
                        (Ok(0), true)
                    }
                    Err(e) => (Err(e), false),
                }
            })
        }
        _ => Err(Errno::EINVAL),
    }
}

// --- message queues ---

pub fn sys_msgget(ctx: &mut Ctx<'_>) -> SysResult {
    let cred = ctx.p.user().cred();
    id_result(msg::get(ctx.int(0), ctx.uint(1), &cred)?)
}

pub fn sys_msgsnd(ctx: &mut Ctx<'_>) -> SysResult {
    let (id, p, size, flags) = (ctx.int(0), ctx.ptr::<i64>(1), ctx.arg(2), ctx.uint(3));
    let size = usize::try_from(size).ok().filter(|&s| s <= msg::MSGMAX).ok_or(Errno::EINVAL)?;
    if id < 0 {
        return Err(Errno::EINVAL);
    }
    let mtype = ctx.read(p)?;
    if mtype < 1 {
        return Err(Errno::EINVAL);
    }
    let at = p.addr().checked_add(8).ok_or(Errno::EFAULT)?;
    let text = ctx.read_slice(UserPtr::<u8>::new(at).slice(size), msg::MSGMAX)?;
    let cred = ctx.p.user().cred();
    msg::send(id, mtype, text, flags, ctx.p.pid, &cred, true)
}

pub fn sys_msgrcv(ctx: &mut Ctx<'_>) -> SysResult {
    let (id, p, size, want, flags) = (ctx.int(0), ctx.ptr::<i64>(1), ctx.arg(2), ctx.arg(3).cast_signed(), ctx.uint(4));
    if id < 0 || size.cast_signed() < 0 {
        return Err(Errno::EINVAL);
    }
    let max = usize::try_from(size).unwrap_or(usize::MAX);
    let cred = ctx.p.user().cred();
    let (mtype, text) = msg::receive(id, max, want, flags, ctx.p.pid, &cred)?;
    ctx.write(p, &mtype)?;
    let at = p.addr().checked_add(8).ok_or(Errno::EFAULT)?;
    ctx.write_slice(UserPtr::<u8>::new(at).slice(text.len()), &text)?;
    Ok(text.len())
}

pub fn sys_msgctl(ctx: &mut Ctx<'_>) -> SysResult {
    let (id, cmd) = (ctx.int(0), ctl_cmd(ctx.int(1)));
    let cred = ctx.p.user().cred();
    match cmd {
        IPC_INFO | MSG_INFO => {
            let (info, max) = msg::with(|ids| {
                let mut info = MsgInfo {
                    msgpool: msg::MSGPOOL,
                    msgmap: msg::MSGMNB_INT,
                    msgmax: msg::MSGMAX_INT,
                    msgmnb: msg::MSGMNB_INT,
                    msgmni: msg::MSGMNI_INT,
                    msgssz: msg::MSGSSZ,
                    msgtql: msg::MSGMNB_INT,
                    msgseg: msg::MSGSEG,
                    pad: 0,
                };
                if cmd == MSG_INFO {
                    info.msgpool = i32::try_from(ids.count()).unwrap_or(i32::MAX);
                    info.msgmap =
                        i32::try_from(ids.iter_mut().map(|(_, _, q)| q.msgs.len()).sum::<usize>()).unwrap_or(i32::MAX);
                    info.msgtql =
                        i32::try_from(ids.iter_mut().map(|(_, _, q)| q.cbytes).sum::<u64>()).unwrap_or(i32::MAX);
                }
                ((info, ids.max_index()), false)
            });
            ctx.write(ctx.ptr(2), &info)?;
            Ok(max)
        }
        IPC_STAT | MSG_STAT | MSG_STAT_ANY => {
            let (ds, full) = msg::with(|ids| {
                let r = (|| {
                    let (full, perm, q) = if cmd == IPC_STAT {
                        let (p, q) = ids.get(id)?;
                        (0, p, q)
                    } else {
                        ids.at_index(id)?
                    };
                    if cmd != MSG_STAT_ANY {
                        perm.check(&cred, 0o444)?;
                    }
                    Ok::<_, Errno>((q.stat(perm), full))
                })();
                (r, false)
            })?;
            ctx.write(ctx.ptr::<MsqidDs>(2), &ds)?;
            if cmd == IPC_STAT { Ok(0) } else { id_result(full) }
        }
        IPC_SET => {
            let ds: MsqidDs = ctx.read(ctx.ptr(2))?;
            msg::with(|ids| {
                let r = ids.get(id).and_then(|(perm, q)| {
                    perm.may_change(&cred)?;
                    if ds.msg_qbytes > msg::MSGMNB && !cred.capable(CAP_SYS_RESOURCE) {
                        return Err(Errno::EPERM);
                    }
                    q.qbytes = ds.msg_qbytes;
                    perm.set(&ds.msg_perm);
                    q.ctime = now_secs();
                    Ok(0)
                });
                let ok = r.is_ok();
                (r, ok)
            })
        }
        IPC_RMID => msg::with(|ids| {
            let r = ids.get(id).and_then(|(perm, _)| perm.may_change(&cred));
            if r.is_err() {
                return (r.map(|_| 0), false);
            }
            ids.remove(id);
            (Ok(0), true)
        }),
        _ => Err(Errno::EINVAL),
    }
}
