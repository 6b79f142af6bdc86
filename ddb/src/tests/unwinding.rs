//! The frame-pointer walk and every way a walk stops, on synthetic stacks.

use super::*;
use crate::unwind::{MAX_FRAMES, Method, StopReason, Trace, unwind};

fn walk(target: &FakeTarget, rip: u64, rsp: u64, rbp: u64, stack: Option<(u64, u64)>) -> Trace {
    unwind(&fake_image(), target, Frame { rip, rsp, rbp }, stack)
}

#[test]
fn frame_pointer_chain() {
    let target = fake_target();
    let trace = walk(&target, MI_SWITCH, STACK, STACK + 0x10, Some((STACK, STACK + 0x1000)));
    assert_eq!(trace.stop, StopReason::Bottom);
    let pcs: Vec<u64> = trace.frames.iter().map(|f| f.pc).collect();
    assert_eq!(pcs, [MI_SWITCH, FORK + 0x10, THREAD_START + 8]);
    assert!(trace.frames.iter().all(|f| f.method == Method::FramePointer));
    assert_eq!(trace.frames[0].cfa, Some(STACK + 0x20));
    assert_eq!(trace.frames[1].args, [Some(0x11), Some(0x12), Some(0x13), Some(0x14), Some(0x15)]);
    assert_eq!(trace.frames[1].lookup_pc(1), FORK + 0xf);
    assert_eq!(trace.frames[0].lookup_pc(0), MI_SWITCH);
}

#[test]
fn stack_bounds_stop_the_walk() {
    let target = fake_target();
    let trace = walk(&target, MI_SWITCH, STACK, STACK + 0x10, Some((STACK, STACK + 0x40)));
    // fork's frame is shown; its caller's would start outside the stack.
    assert_eq!(trace.frames.len(), 2);
    assert_eq!(trace.stop, StopReason::OutOfStack(STACK + 0x60));
    // Bounds that do not hold the starting rsp are not this stack's: ignored.
    let trace = walk(&target, MI_SWITCH, STACK, STACK + 0x10, Some((0x1000, 0x2000)));
    assert_eq!(trace.frames.len(), 3);
}

#[test]
fn frame_pointer_loop_is_caught() {
    let mut target = FakeTarget::default();
    // rbp points at itself: in the second frame it is below rsp.
    target.map_words(STACK, &[STACK, FORK + 1, 0, 0, 0, 0, 0, 0]);
    let trace = walk(&target, MI_SWITCH, STACK, STACK, None);
    assert_eq!(trace.stop, StopReason::NoUnwindInfo);
    assert_eq!(trace.frames.len(), 2);
}

#[test]
fn read_errors_and_bad_frame_pointers() {
    let mut target = FakeTarget::default();
    target.map_words(STACK, &[0; 4]);
    // rbp below rsp is not a frame pointer.
    let trace = walk(&target, MI_SWITCH, STACK + 0x10, STACK, None);
    assert_eq!((trace.frames.len(), &trace.stop), (1, &StopReason::NoUnwindInfo));
    assert_eq!(trace.frames[0].method, Method::None);
    // A frame pointer into unmapped memory.
    let trace = walk(&target, MI_SWITCH, STACK, STACK + 0x1000, None);
    assert_eq!(trace.stop, StopReason::ReadError(STACK + 0x1008));
    assert_eq!(trace.frames.len(), 1);
    // pc 0: nothing to show.
    assert!(walk(&target, 0, STACK, STACK, None).frames.is_empty());
}

#[test]
fn deep_stacks_stop_at_the_limit() {
    let mut target = FakeTarget::default();
    let words: Vec<u64> = (0..200u64).flat_map(|i| [STACK + 16 * (i + 1), FORK + 4]).collect();
    target.map_words(STACK, &words);
    let trace = walk(&target, MI_SWITCH, STACK, STACK, None);
    assert_eq!(trace.stop, StopReason::TooDeep);
    assert_eq!(trace.frames.len(), MAX_FRAMES);
}
