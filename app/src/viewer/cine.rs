//! Cine: the active viewport plays through its slices (a multi-frame series' frames are its
//! slices) at a set rate, looping or going back and forth. Space starts and stops it. Time comes
//! from egui's input clock, so playback keeps its rate whatever the frame rate is.

/// What happens at the last slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CineMode {
    /// Back to the first slice.
    Loop,
    /// Turn round and play backwards.
    Bounce,
}

/// Playback state (transient, like the rest of the view).
#[derive(Clone, Debug, PartialEq)]
pub struct Cine {
    pub playing: bool,
    /// Slices a second.
    pub fps: f64,
    pub mode: CineMode,
    /// +1 forwards, -1 backwards (bounce).
    direction: i64,
    /// Time of the last advance, and the part of a slice owed since.
    last_time: Option<f64>,
    owed: f64,
}

/// The rates the menu offers (a catheter angiogram runs at 7.5-30 frames a second).
pub const FPS_RANGE: std::ops::RangeInclusive<f64> = 1.0..=60.0;

impl Default for Cine {
    fn default() -> Self {
        Cine {
            playing: false,
            fps: 15.0,
            mode: CineMode::Loop,
            direction: 1,
            last_time: None,
            owed: 0.0,
        }
    }
}

impl Cine {
    /// Space: start or stop.
    pub fn toggle(&mut self) {
        self.playing = !self.playing;
        self.last_time = None;
        self.owed = 0.0;
    }

    /// The slice to show at time `now` (seconds) after `index`, in a plane of `count` slices.
    pub fn advance(&mut self, now: f64, index: usize, count: usize) -> usize {
        if !self.playing || count < 2 {
            self.last_time = None;
            return index;
        }
        let Some(last) = self.last_time.replace(now) else {
            return index;
        };
        self.owed += (now - last).max(0.0) * self.fps.clamp(*FPS_RANGE.start(), *FPS_RANGE.end());
        let steps = self.owed.floor();
        self.owed -= steps;
        // After a long pause (window hidden) the position within one cycle is what matters.
        let cycle = match self.mode {
            CineMode::Loop => count,
            CineMode::Bounce => 2 * (count - 1),
        };
        let mut index = index.min(count - 1) as i64;
        for _ in 0..(steps as usize % cycle) {
            let next = index + self.direction;
            index = match self.mode {
                CineMode::Loop if next >= count as i64 => 0,
                CineMode::Loop if next < 0 => count as i64 - 1,
                CineMode::Bounce if next < 0 || next >= count as i64 => {
                    self.direction = -self.direction;
                    index + self.direction
                }
                _ => next,
            };
        }
        index as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plays_at_its_rate_loops_and_bounces() {
        // Four slices a second: a quarter of a second is one slice (exact in binary).
        let mut cine = Cine {
            fps: 4.0,
            ..Cine::default()
        };
        assert_eq!(cine.advance(0.0, 3, 5), 3, "stopped");
        cine.toggle();
        assert_eq!(cine.advance(0.0, 3, 5), 3, "the clock starts");
        assert_eq!(cine.advance(0.125, 3, 5), 3, "half a slice owed");
        assert_eq!(cine.advance(0.25, 3, 5), 4);
        assert_eq!(cine.advance(0.5, 4, 5), 0, "looped");
        cine.mode = CineMode::Bounce;
        assert_eq!(cine.advance(1.5, 0, 5), 4);
        assert_eq!(cine.advance(2.0, 4, 5), 2, "turned round");
        assert_eq!(cine.advance(2.5, 2, 5), 0);
        assert_eq!(cine.advance(2.75, 0, 5), 1, "and forwards again");
        // A long pause: the position within a cycle (8 steps), not thousands of steps.
        assert_eq!(cine.advance(1002.75, 1, 5), 1);
        cine.toggle();
        assert_eq!(cine.advance(2000.0, 1, 5), 1, "stopped");
        assert_eq!(cine.advance(2000.0, 1, 1), 1);
    }
}
