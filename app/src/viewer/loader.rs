//! Opening and loading run on background threads; the UI polls a channel each frame, so it never
//! waits on the disk. Slices are forwarded as they are decoded (progressive display).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use eframe::egui;
use groundglass_study::{
    open, DisplayImage, LoadObserver, Series, Volume, VolumeLayout, VoxelData, VoxelSlice,
};

/// What a background job reports.
pub enum LoadMessage {
    /// Headers read by open `open` (the number [`Loader::open`] was given: a path opened after
    /// it replaces it, and its messages are then dropped): the series found, and files that could
    /// not be read.
    Opened {
        open: u64,
        path: PathBuf,
        series: Vec<Series>,
        errors: Vec<String>,
        /// DICOM Segmentations found beside the images (overlays).
        segmentations: Vec<groundglass_study::dicom::seg::Segmentation>,
    },
    /// A preview for the series browser.
    Thumbnail {
        open: u64,
        series: usize,
        image: DisplayImage,
    },
    /// Load `load` (the number [`Loader::load`] was given) began; its layout is known. The
    /// number tells a load's messages from those of one it replaced (another series, or another
    /// volume of the same one).
    Started {
        load: u64,
        layout: Box<VolumeLayout>,
    },
    /// One decoded slice (acquisition order).
    Slice {
        load: u64,
        k: usize,
        done: usize,
        total: usize,
        data: VoxelData,
    },
    /// The whole volume is in (or loading failed).
    Finished {
        load: u64,
        result: Result<Arc<Volume>, String>,
    },
    /// Opening the path failed altogether (the message names the path).
    Failed { open: u64, error: String },
}

/// A running job; dropping the handle does not stop it, `cancel` does.
pub struct Job {
    cancel: Arc<AtomicBool>,
}

impl Job {
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

pub struct Loader {
    tx: Sender<LoadMessage>,
    pub rx: Receiver<LoadMessage>,
    ctx: egui::Context,
}

struct Forward {
    load: u64,
    tx: Sender<LoadMessage>,
    ctx: egui::Context,
    cancel: Arc<AtomicBool>,
}

impl LoadObserver for Forward {
    fn started(&self, layout: &VolumeLayout) {
        let _ = self.tx.send(LoadMessage::Started {
            load: self.load,
            layout: Box::new(layout.clone()),
        });
        self.ctx.request_repaint();
    }

    fn slice_ready(&self, k: usize, done: usize, total: usize, slice: VoxelSlice<'_>) {
        let _ = self.tx.send(LoadMessage::Slice {
            load: self.load,
            k,
            done,
            total,
            data: slice.to_owned_data(),
        });
        self.ctx.request_repaint();
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

impl Loader {
    pub fn new(ctx: egui::Context) -> Self {
        let (tx, rx) = channel();
        Loader { tx, rx, ctx }
    }

    /// Reads the headers under `path`, then thumbnails of every series.
    pub fn open(&self, open_number: u64, path: PathBuf) -> Job {
        let tx = self.tx.clone();
        let ctx = self.ctx.clone();
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        std::thread::spawn(move || match open(&path) {
            Ok(study) => {
                let errors = study.errors.iter().map(|e| e.to_string()).collect();
                let series = study.series.clone();
                let _ = tx.send(LoadMessage::Opened {
                    open: open_number,
                    path,
                    series: series.clone(),
                    errors,
                    segmentations: study.segmentations.clone(),
                });
                ctx.request_repaint();
                for (n, s) in series.iter().enumerate() {
                    if flag.load(Ordering::Relaxed) {
                        return;
                    }
                    if let Ok(image) = s.thumbnail(96) {
                        let _ = tx.send(LoadMessage::Thumbnail {
                            open: open_number,
                            series: n,
                            image,
                        });
                        ctx.request_repaint();
                    }
                }
            }
            Err(e) => {
                let _ = tx.send(LoadMessage::Failed {
                    open: open_number,
                    error: e.to_string(),
                });
                ctx.request_repaint();
            }
        });
        Job { cancel }
    }

    /// Loads one volume of a series' pixels, forwarding slices as they are decoded, its messages
    /// tagged `load`.
    pub fn load(&self, load: u64, series: Series, volume_index: usize) -> Job {
        let cancel = Arc::new(AtomicBool::new(false));
        let observer = Forward {
            load,
            tx: self.tx.clone(),
            ctx: self.ctx.clone(),
            cancel: cancel.clone(),
        };
        std::thread::spawn(move || {
            let result = series
                .load(volume_index, &observer)
                .map(Arc::new)
                .map_err(|e| e.to_string());
            let _ = observer.tx.send(LoadMessage::Finished { load, result });
            observer.ctx.request_repaint();
        });
        Job { cancel }
    }
}
