//! The one render context that owns every GPU resource of the viewer: the volume textures (the
//! series on screen and, in the compare layout, the one beside it; each uploaded once, slice by
//! slice as loading progresses), the slice pipelines, and a small uniform buffer per viewport. It
//! lives in egui_wgpu's callback resources; paint callbacks carry only parameters.

mod callback;
mod detail;
mod fold;
mod label_texture;
mod volume_texture;

pub use callback::{SliceCallback, SliceParams};
pub use label_texture::{Palette, PALETTE_SIZE};
pub use volume_texture::TexelClass;

use eframe::egui_wgpu::{self, wgpu};
use groundglass_study::{Dirty, LabelVolume, Volume, VolumeLayout, VoxelSlice};

use detail::Detail;
use label_texture::LabelTexture;
use volume_texture::VolumeTexture;

/// Counts of what went to the GPU, so tests and the benchmark can prove that scrolling and
/// windowing upload nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UploadStats {
    /// Texture writes (one per slice, as it arrives).
    pub texture_writes: u64,
    pub texture_bytes: u64,
    /// Uniform writes (one per viewport per frame: about 150 bytes).
    pub uniform_writes: u64,
    /// Label texture writes (when a mask overlay changes), and their bytes.
    pub label_writes: u64,
    pub label_bytes: u64,
}

/// The viewports: 0 the single layout, 1-3 the three-plane layout, 4 the compared series.
pub const MAX_VIEWPORTS: usize = 5;

/// Which volume a viewport shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeSlot {
    /// The series on screen.
    Main = 0,
    /// The series compared with it, beside it.
    Compared = 1,
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / f64::from(1u32 << 20))
}

/// The bytes a volume and its label map take on the GPU, every `step`-th voxel kept.
fn gpu_bytes(layout: &VolumeLayout, step: usize) -> u64 {
    let (_, _, texel) = volume_texture::format_of(layout);
    let voxels: u64 = layout
        .dims
        .iter()
        .map(|&d| d.div_ceil(step) as u64)
        .product();
    voxels * (texel as u64 + 1)
}

/// The coarsest overview: every 16th voxel, a 4,096th of them.
const MAX_OVERVIEW_STEP: usize = 16;

/// The overview's step: 1 within the budget, else the smallest power of two that fits (at most
/// [`MAX_OVERVIEW_STEP`]).
fn overview_step(layout: &VolumeLayout, budget: Option<u64>) -> usize {
    let Some(budget) = budget else {
        return 1;
    };
    let mut step = 1;
    while step < MAX_OVERVIEW_STEP && gpu_bytes(layout, step) > budget {
        step *= 2;
    }
    step
}

/// Without a budget from the user, volumes may take this share of the adapter's device-local
/// memory (the rest for other programs, the window and egui).
const ADAPTER_SHARE: u64 = 2;
const ADAPTER_SHARE_TEXT: &str = "half of";

/// The adapter's largest device-local memory heap, where the backend tells it: Vulkan (the
/// physical device's memory properties). `None` on other backends (Metal, DX12, GL), where the
/// budget stays unset unless the user sets one.
fn device_local_bytes(adapter: &wgpu::Adapter) -> Option<u64> {
    #[cfg(any(target_os = "linux", target_os = "windows"))]
    {
        use wgpu::hal::api::Vulkan;
        // SAFETY: only reads the physical device's memory properties through the instance that
        // made it; nothing is created, and the handle is dropped before returning.
        let adapter = unsafe { adapter.as_hal::<Vulkan>() }?;
        let instance = adapter.shared_instance().raw_instance();
        // SAFETY: the physical device belongs to this instance, which outlives the call.
        let memory = unsafe {
            instance.get_physical_device_memory_properties(adapter.raw_physical_device())
        };
        let heaps = memory.memory_heaps_as_slice();
        heaps
            .iter()
            .filter(|h| h.flags.contains(ash::vk::MemoryHeapFlags::DEVICE_LOCAL))
            .map(|h| h.size)
            .max()
    }
    #[cfg(not(any(target_os = "linux", target_os = "windows")))]
    {
        let _ = adapter;
        None
    }
}

/// A budget in MB as bytes; none for 0, less or not a number.
fn budget_bytes(mb: f64) -> Option<u64> {
    (mb > 0.0).then(|| (mb * f64::from(1u32 << 20)) as u64)
}

/// One volume on the GPU and what viewports bind to draw it.
struct Slot {
    volume: VolumeTexture,
    labels: LabelTexture,
    /// Full resolution where the user reads, for an overview (a stand-in otherwise).
    detail: Detail,
    /// How the volume is folded into its texture (`Fold::uniform`), its overview step and the
    /// detail slab's place: written when the volume begins and when the slab moves, not per
    /// frame.
    fold: wgpu::Buffer,
    /// One per viewport (its uniform buffer with this volume).
    bind_groups: Vec<wgpu::BindGroup>,
}

pub struct RenderContext {
    /// Bind group layouts and pipeline layouts, one per texel class (sint, uint, float
    /// textures).
    layouts: Vec<wgpu::BindGroupLayout>,
    pipeline_layouts: Vec<wgpu::PipelineLayout>,
    /// The slice pipelines by shader variant, each made when a viewport first needs it (in the
    /// paint callback's `prepare`, which has the device).
    pipelines: std::collections::HashMap<Variant, wgpu::RenderPipeline>,
    target: wgpu::TextureFormat,
    uniforms: Vec<wgpu::Buffer>,
    /// By `VolumeSlot`.
    slots: [Option<Slot>; 2],
    palette: wgpu::Buffer,
    /// The longest side of a 3D texture: the adapter's, or lower with GROUNDGLASS_MAX_TEXTURE_3D
    /// (to see and test folding on a small series).
    texture_limit: usize,
    /// The bytes a volume and its labels may take on the GPU (GROUNDGLASS_GPU_BUDGET_MB; wgpu
    /// says nothing of an adapter's memory), else a share of the adapter's device-local memory
    /// where the backend tells it (`device_local_bytes`): beyond it, an overview (`overview_step`).
    budget_bytes: Option<u64>,
    /// Where the budget came from, for the notice.
    budget_source: String,
    pub stats: UploadStats,
}

const SHADER: &str = include_str!("../../../shaders/slice.wgsl");

/// What a viewport draws, as far as the shader variant goes (from its parameters).
#[derive(Clone, Copy, Debug)]
struct Drawn {
    /// The voxel axis every sample lies on whole voxels of (`view::whole_voxel_axis`).
    exact: Option<usize>,
    /// A thick slab's projection (more than one sample along the normal).
    thick: bool,
    /// A mask overlay shown (its opacity above 0).
    labels: bool,
}

impl Drawn {
    fn of(params: &SliceParams) -> Self {
        let axis = params.slab[3];
        Drawn {
            exact: (axis >= 0.0).then_some(axis as usize),
            thick: params.slab[1] > 1.5,
            labels: params.flags[3] > 0.0,
        }
    }
}

/// One slice pipeline: the shader's constants. Each choice is a constant rather than a branch on
/// a uniform because a software adapter runs both sides of a branch it cannot prove uniform
/// (on llvmpipe the fold arithmetic, the thick-slab loop and the label read ran for every pixel
/// of a plain slice: 43-51 ms a frame against 29-31 without them, BENCHMARKS.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Variant {
    class: TexelClass,
    /// EXACT_AXIS: the voxel axis every sample lies on whole voxels of, -1 none.
    exact: i32,
    /// PLAIN_VOLUME: neither folded nor an overview (a texel is its voxel).
    plain: bool,
    /// DETAIL_SLAB: an overview with a full-resolution slab.
    detail: bool,
    /// THICK_SLAB: a thick slab's projection rather than one slice.
    thick: bool,
    /// LABEL_OVERLAY: a mask overlay to blend (its opacity above 0).
    labels: bool,
}

impl RenderContext {
    /// Creates the pipelines and registers the context in the renderer's callback resources.
    pub fn install(state: &egui_wgpu::RenderState) {
        let mut context = RenderContext::new(&state.device, state.target_format);
        if context.budget_bytes.is_none() {
            if let Some(heap) = device_local_bytes(&state.adapter) {
                context.budget_bytes = Some(heap / ADAPTER_SHARE);
                context.budget_source = format!(
                    "{ADAPTER_SHARE_TEXT} the adapter's {} of device memory; \
                     GROUNDGLASS_GPU_BUDGET_MB sets another",
                    megabytes(heap)
                );
            }
        }
        state.renderer.write().callback_resources.insert(context);
    }

    fn new(device: &wgpu::Device, target: wgpu::TextureFormat) -> Self {
        let uniform_entry = wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let mut layouts = Vec::new();
        let mut pipeline_layouts = Vec::new();
        for class in TexelClass::ALL {
            let texture_entry = wgpu::BindGroupLayoutEntry {
                binding: 1,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Texture {
                    sample_type: class.sample_type(),
                    view_dimension: wgpu::TextureViewDimension::D3,
                    multisampled: false,
                },
                count: None,
            };
            let labels_entry = wgpu::BindGroupLayoutEntry {
                binding: 2,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Texture {
                    sample_type: wgpu::TextureSampleType::Uint,
                    view_dimension: wgpu::TextureViewDimension::D3,
                    multisampled: false,
                },
                count: None,
            };
            let palette_entry = wgpu::BindGroupLayoutEntry {
                binding: 3,
                ..uniform_entry
            };
            let fold_entry = wgpu::BindGroupLayoutEntry {
                binding: 4,
                ..uniform_entry
            };
            let detail_entry = wgpu::BindGroupLayoutEntry {
                binding: 5,
                ..texture_entry
            };
            let detail_labels_entry = wgpu::BindGroupLayoutEntry {
                binding: 6,
                ..labels_entry
            };
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("groundglass slice"),
                entries: &[
                    uniform_entry,
                    texture_entry,
                    labels_entry,
                    palette_entry,
                    fold_entry,
                    detail_entry,
                    detail_labels_entry,
                ],
            });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("groundglass slice"),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            layouts.push(layout);
            pipeline_layouts.push(pipeline_layout);
        }
        let uniforms = (0..MAX_VIEWPORTS)
            .map(|_| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("groundglass slice params"),
                    size: std::mem::size_of::<SliceParams>() as u64,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .collect();
        let palette = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("groundglass label palette"),
            size: std::mem::size_of::<Palette>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let adapter_limit = device.limits().max_texture_dimension_3d as usize;
        let texture_limit = std::env::var("GROUNDGLASS_MAX_TEXTURE_3D")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&v| v > 0)
            .map_or(adapter_limit, |v| v.min(adapter_limit));
        let budget_bytes = std::env::var("GROUNDGLASS_GPU_BUDGET_MB")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .and_then(budget_bytes);
        RenderContext {
            layouts,
            pipelines: std::collections::HashMap::new(),
            pipeline_layouts,
            target,
            uniforms,
            slots: [None, None],
            palette,
            texture_limit,
            budget_bytes,
            budget_source: "GROUNDGLASS_GPU_BUDGET_MB".into(),
            stats: UploadStats::default(),
        }
    }

    /// The GPU memory budget for the volumes that begin from now on, in MB (0 or less: none).
    pub fn set_budget_mb(&mut self, mb: f64) {
        self.budget_bytes = budget_bytes(mb);
        self.budget_source = "as asked".into();
    }

    /// Allocates the volume texture of `slot` for a series that starts loading (replacing any
    /// previous one there). `Ok(Some(notice))` when the volume is over the GPU memory budget and
    /// is shown as an overview (the notice says so).
    pub fn begin_volume(
        &mut self,
        slot: VolumeSlot,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        layout: &VolumeLayout,
    ) -> Result<Option<String>, String> {
        // The old texture goes first: two large volumes need not fit at once.
        self.slots[slot as usize] = None;
        let (_, _, texel) = volume_texture::format_of(layout);
        // A GPU that refuses the memory (the budget was too high for it) takes a coarser
        // overview instead: wgpu's default for an uncaptured error is a panic.
        let mut step = overview_step(layout, self.budget_bytes);
        let mut refused = None;
        let (volume, labels, detail, slab) = loop {
            let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
            let volume = VolumeTexture::new(device, layout, self.texture_limit, step);
            let labels = volume
                .as_ref()
                .ok()
                .map(|v| LabelTexture::new(device, layout.dims, step, v.fold));
            let slab = detail::slices_for(
                layout.dims,
                texel,
                step,
                self.budget_bytes,
                gpu_bytes(layout, step),
                self.texture_limit,
            );
            let detail = Detail::new(device, layout, slab);
            let error = pollster::block_on(scope.pop());
            match (volume, labels, error) {
                (Ok(volume), Some(labels), None) => break (volume, labels, detail, slab),
                (Err(e), _, _) => return Err(e),
                (_, _, Some(e)) if step < MAX_OVERVIEW_STEP => {
                    refused = Some(e.to_string());
                    step *= 2;
                }
                (_, _, e) => {
                    return Err(format!(
                        "the GPU has no memory for the volume even as an overview of every \
                         {step}th voxel: {}",
                        e.map(|e| e.to_string()).unwrap_or_default()
                    ))
                }
            }
        };
        let fold = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("groundglass volume fold"),
            size: 48,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let [a, b, c, d] = fold::Fold::uniform(volume.fold);
        let [e, f, g, h] = detail.uniform();
        let folding: [f32; 12] = [a, b, c, d, step as f32, 0.0, 0.0, 0.0, e, f, g, h];
        queue.write_buffer(&fold, 0, bytemuck::bytes_of(&folding));
        let class = volume.class as usize;
        let bind_groups = self
            .uniforms
            .iter()
            .map(|buffer| {
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("groundglass slice"),
                    layout: &self.layouts[class],
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: buffer.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: wgpu::BindingResource::TextureView(&volume.view),
                        },
                        wgpu::BindGroupEntry {
                            binding: 2,
                            resource: wgpu::BindingResource::TextureView(&labels.view),
                        },
                        wgpu::BindGroupEntry {
                            binding: 3,
                            resource: self.palette.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 4,
                            resource: fold.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 5,
                            resource: wgpu::BindingResource::TextureView(&detail.volume_view),
                        },
                        wgpu::BindGroupEntry {
                            binding: 6,
                            resource: wgpu::BindingResource::TextureView(&detail.labels_view),
                        },
                    ],
                })
            })
            .collect();
        self.slots[slot as usize] = Some(Slot {
            volume,
            labels,
            detail,
            fold,
            bind_groups,
        });
        let reading = if slab > 0 {
            format!(", at full resolution in the {slab} slices around where you read")
        } else {
            String::new()
        };
        let why = match &refused {
            Some(e) => format!(
                "the GPU refused the memory for the volume and its labels at {} ({e})",
                megabytes(gpu_bytes(layout, step / 2))
            ),
            None => format!(
                "the volume and its labels take {} on the GPU, more than its budget of {} ({})",
                megabytes(gpu_bytes(layout, 1)),
                megabytes(self.budget_bytes.unwrap_or(0)),
                self.budget_source,
            ),
        };
        Ok((step > 1).then(|| {
            format!(
                "{why}: shown as an overview, every {step}{} voxel along each axis{reading}; \
                 measurements and the model still read every voxel",
                match step {
                    2 => "nd",
                    3 => "rd",
                    _ => "th",
                }
            )
        }))
    }

    /// Copies the changed part of the label volume (mask overlays, of the series on screen) to
    /// the GPU.
    pub fn upload_labels(&mut self, queue: &wgpu::Queue, labels: &LabelVolume, dirty: Dirty) {
        if let Some(slot) = self.slots[VolumeSlot::Main as usize].as_ref() {
            let bytes = slot.labels.write(queue, labels, dirty)
                + slot.detail.write_labels(queue, labels, dirty);
            if bytes > 0 {
                self.stats.label_writes += 1;
                self.stats.label_bytes += bytes as u64;
            }
        }
    }

    pub fn set_palette(&mut self, queue: &wgpu::Queue, palette: &Palette) {
        queue.write_buffer(&self.palette, 0, bytemuck::bytes_of(palette));
    }

    /// Writes one decoded slice into the volume texture of `slot`.
    pub fn upload_slice(
        &mut self,
        slot: VolumeSlot,
        queue: &wgpu::Queue,
        k: usize,
        slice: VoxelSlice<'_>,
        layout: &VolumeLayout,
    ) {
        if let Some(volume) = self.slots[slot as usize].as_ref().map(|s| &s.volume) {
            let bytes = volume.write_slice(queue, k, slice, layout);
            self.stats.texture_writes += 1;
            self.stats.texture_bytes += bytes as u64;
        }
    }

    /// For a volume shown as an overview: moves the detail slab of `slot` to where the user
    /// reads (voxel `k` along the slices, fractional) if it is not there, writing the slices
    /// that come into it from `volume` (the loaded volume of that slot) and `labels`. Returns
    /// whether it moved.
    pub fn follow_reader(
        &mut self,
        slot: VolumeSlot,
        queue: &wgpu::Queue,
        volume: &Volume,
        labels: Option<&LabelVolume>,
        k: f64,
    ) -> bool {
        let Some(s) = self.slots[slot as usize].as_mut() else {
            return false;
        };
        let Some(first) = s.detail.first_for(k) else {
            return false;
        };
        let (slices, bytes) = s.detail.move_to(queue, first, volume, labels);
        if slices == 0 {
            return false;
        }
        queue.write_buffer(&s.fold, 32, bytemuck::bytes_of(&s.detail.uniform()));
        self.stats.texture_writes += slices as u64;
        self.stats.texture_bytes += bytes as u64;
        true
    }

    /// The GPU memory budget for volumes, in bytes, and where it came from.
    pub fn budget(&self) -> (Option<u64>, &str) {
        (self.budget_bytes, &self.budget_source)
    }

    /// The slices `slot`'s detail slab holds at full resolution (an overview's), once placed.
    pub fn detail_slices(&self, slot: VolumeSlot) -> Option<std::ops::Range<usize>> {
        self.slots[slot as usize].as_ref()?.detail.held()
    }

    pub fn has_volume(&self, slot: VolumeSlot) -> bool {
        self.slots[slot as usize].is_some()
    }

    /// Into how many parts the volume's long axis is folded (1: not folded).
    pub fn volume_parts(&self, slot: VolumeSlot) -> usize {
        self.slots[slot as usize]
            .as_ref()
            .and_then(|s| s.volume.fold)
            .map_or(1, |f| f.parts)
    }

    pub fn drop_volume(&mut self, slot: VolumeSlot) {
        self.slots[slot as usize] = None;
    }

    /// The shader variant that draws `slot` as a viewport asks.
    fn variant(&self, slot: VolumeSlot, draw: Drawn) -> Option<Variant> {
        let s = self.slots[slot as usize].as_ref()?;
        Some(Variant {
            class: s.volume.class,
            exact: draw.exact.map_or(-1, |a| a.min(2) as i32),
            plain: s.volume.fold.is_none() && s.volume.step == 1,
            detail: s.detail.count() > 0,
            thick: draw.thick,
            labels: draw.labels,
        })
    }

    /// Makes the pipeline a viewport will draw with, if no viewport needed it before.
    fn prepare_pipeline(&mut self, device: &wgpu::Device, slot: VolumeSlot, draw: Drawn) {
        let Some(variant) = self.variant(slot, draw) else {
            return;
        };
        if !self.pipelines.contains_key(&variant) {
            let layout = &self.pipeline_layouts[variant.class as usize];
            let pipeline = slice_pipeline(device, layout, self.target, variant);
            self.pipelines.insert(variant, pipeline);
        }
    }

    /// The pipeline and bind group that draw viewport `viewport` from `slot`
    /// ([`Self::prepare_pipeline`] made the pipeline).
    fn draw_state(
        &self,
        slot: VolumeSlot,
        viewport: usize,
        draw: Drawn,
    ) -> Option<(&wgpu::RenderPipeline, &wgpu::BindGroup)> {
        let variant = self.variant(slot, draw)?;
        let s = self.slots[slot as usize].as_ref()?;
        Some((self.pipelines.get(&variant)?, s.bind_groups.get(viewport)?))
    }
}

/// The slice pipeline of one shader variant.
fn slice_pipeline(
    device: &wgpu::Device,
    layout: &wgpu::PipelineLayout,
    target: wgpu::TextureFormat,
    v: Variant,
) -> wgpu::RenderPipeline {
    let source = SHADER
        .replace("TEXEL", v.class.wgsl_type())
        .replace("= EXACT;", &format!("= {};", v.exact))
        .replace("= PLAIN_VOLUME;", &format!("= {};", v.plain))
        .replace("= DETAIL_SLAB;", &format!("= {};", v.detail))
        .replace("= THICK_SLAB;", &format!("= {};", v.thick))
        .replace("= LABEL_OVERLAY;", &format!("= {};", v.labels));
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("groundglass slice"),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("groundglass slice"),
        layout: Some(layout),
        vertex: wgpu::VertexState {
            module: &module,
            entry_point: Some("vs_main"),
            compilation_options: Default::default(),
            buffers: &[],
        },
        fragment: Some(wgpu::FragmentState {
            module: &module,
            entry_point: Some("fs_main"),
            compilation_options: Default::default(),
            targets: &[Some(target.into())],
        }),
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        multiview_mask: None,
        cache: None,
    })
}
