//! MIS-SemSam (arXiv 2603.14579), a training-free decoding rule for spatial terms. Offline, each
//! content token gets its K nearest neighbours by cosine similarity in the token-embedding matrix
//! (special, `<loc>`, `<seg>` and image tokens excluded). At each step the top-M / top-p candidates
//! are taken; if any is a non-content token the step decodes as usual, otherwise each candidate c is
//! scored as the sum over its neighbours k of max(0, sim(c, k)) * p(k), and the best score wins.
//! The paper publishes neither K, M nor p; the defaults here are a starting point. The candidate
//! itself counts as its own nearest neighbour (similarity 1).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, D};

use crate::error::{ModelError, Result};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SemSamConfig {
    pub k: usize,
    pub top_m: usize,
    pub top_p: f32,
}

impl Default for SemSamConfig {
    fn default() -> Self {
        SemSamConfig {
            k: 8,
            top_m: 10,
            top_p: 0.9,
        }
    }
}

/// Nearest neighbours of every content token (empty for other tokens).
#[derive(Clone, Debug, PartialEq)]
pub struct NeighbourTable {
    pub k: usize,
    /// Per token: (neighbour id, cosine similarity), most similar first, itself included.
    pub neighbours: Vec<Vec<(u32, f32)>>,
}

impl NeighbourTable {
    /// Computes the table from the embedding matrix (vocab, hidden); `content[t]` marks content
    /// tokens. Rows are processed in blocks so memory stays at block x vocab similarities.
    pub fn build(embeddings: &Tensor, content: &[bool], k: usize) -> Result<Self> {
        let e = embeddings.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
        let norms = e
            .sqr()?
            .sum_keepdim(D::Minus1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        let unit = e.broadcast_div(&norms)?;
        let ids: Vec<u32> = (0..content.len() as u32)
            .filter(|&t| content[t as usize])
            .collect();
        let content_t = Tensor::new(ids.as_slice(), &Device::Cpu)?;
        let content_rows = unit.index_select(&content_t, 0)?;
        let mut neighbours = vec![Vec::new(); content.len()];
        for block in ids.chunks(256) {
            let rows = unit.index_select(&Tensor::new(block, &Device::Cpu)?, 0)?;
            let sims = rows.matmul(&content_rows.t()?)?.to_vec2::<f32>()?;
            for (&token, row) in block.iter().zip(sims) {
                let mut scored: Vec<(u32, f32)> = ids.iter().copied().zip(row).collect();
                // The token itself first, then by similarity.
                scored.sort_by(|a, b| {
                    (b.0 == token)
                        .cmp(&(a.0 == token))
                        .then(b.1.total_cmp(&a.1))
                });
                scored.truncate(k.max(1));
                neighbours[token as usize] = scored;
            }
        }
        Ok(NeighbourTable { k, neighbours })
    }

    /// Loads the table cached at `path`, or builds and saves it there.
    pub fn cached(path: &Path, embeddings: &Tensor, content: &[bool], k: usize) -> Result<Self> {
        if let Ok(t) = Self::load(path, content.len(), k) {
            return Ok(t);
        }
        let table = Self::build(embeddings, content, k)?;
        // A read-only model folder only costs the rebuild next time.
        let _ = table.save(path);
        Ok(table)
    }

    fn save(&self, path: &Path) -> Result<()> {
        let v = self.neighbours.len();
        let mut ids = vec![u32::MAX; v * self.k];
        let mut sims = vec![0f32; v * self.k];
        for (t, n) in self.neighbours.iter().enumerate() {
            for (i, (id, s)) in n.iter().enumerate().take(self.k) {
                ids[t * self.k + i] = *id;
                sims[t * self.k + i] = *s;
            }
        }
        let ids = Tensor::from_vec(ids, (v, self.k), &Device::Cpu)?;
        let sims = Tensor::from_vec(sims, (v, self.k), &Device::Cpu)?;
        let tmp = path.with_extension("tmp");
        candle_core::safetensors::save(
            &[("ids", ids), ("sims", sims)].into_iter().collect(),
            &tmp,
        )?;
        std::fs::rename(&tmp, path).map_err(|e| ModelError::Io {
            path: path.to_path_buf(),
            source: e,
        })
    }

    fn load(path: &Path, vocab: usize, k: usize) -> Result<Self> {
        let t = candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| {
            ModelError::Weights {
                path: path.to_path_buf(),
                message: e.to_string(),
            }
        })?;
        let bad = || ModelError::Weights {
            path: path.to_path_buf(),
            message: "not a neighbour table for this model".into(),
        };
        let ids = t.get("ids").ok_or_else(bad)?.to_vec2::<u32>()?;
        let sims = t.get("sims").ok_or_else(bad)?.to_vec2::<f32>()?;
        if ids.len() != vocab || ids.first().map(|r| r.len()) != Some(k) {
            return Err(bad());
        }
        let neighbours = ids
            .into_iter()
            .zip(sims)
            .map(|(i, s)| {
                i.into_iter()
                    .zip(s)
                    .filter(|(id, _)| *id != u32::MAX)
                    .collect()
            })
            .collect();
        Ok(NeighbourTable { k, neighbours })
    }

    /// Where the table for a model folder is cached.
    pub fn cache_path(model_dir: &Path, k: usize) -> PathBuf {
        model_dir.join(format!("semsam_neighbours_k{k}.safetensors"))
    }

    /// The SemSam choice for one step's logits.
    pub fn choose(&self, logits: &[f32], config: &SemSamConfig) -> u32 {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let sum: f32 = exp.iter().sum();
        let p: Vec<f32> = exp.iter().map(|e| e / sum).collect();
        let mut order: Vec<u32> = (0..p.len() as u32).collect();
        order.sort_by(|a, b| p[*b as usize].total_cmp(&p[*a as usize]));
        let mut candidates = Vec::new();
        let mut mass = 0.0;
        for &t in order.iter().take(config.top_m.max(1)) {
            candidates.push(t);
            mass += p[t as usize];
            if mass >= config.top_p {
                break;
            }
        }
        let greedy = order[0];
        if candidates.iter().any(|&c| {
            self.neighbours
                .get(c as usize)
                .map(|n| n.is_empty())
                .unwrap_or(true)
        }) {
            return greedy;
        }
        let score = |c: u32| -> f32 {
            self.neighbours[c as usize]
                .iter()
                .map(|(k, s)| s.max(0.0) * p[*k as usize])
                .sum()
        };
        candidates
            .into_iter()
            .max_by(|a, b| score(*a).total_cmp(&score(*b)))
            .unwrap_or(greedy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-checked: "right" is the most likely token (0.35) but "left" and its synonym "links"
    /// together carry more mass; SemSam picks "left", greedy "right".
    #[test]
    fn semantic_mass_beats_the_single_most_likely_token() {
        // 0 special, 1 left, 2 links (close to left), 3 right, 4 rechts (close to right), 5 liver.
        let e = Tensor::new(
            &[
                [0.0f32, 0.0, 1.0],
                [1.0, 0.1, 0.0],
                [0.95, 0.2, 0.0],
                [-1.0, 0.1, 0.0],
                [-0.9, 0.3, 0.0],
                [0.0, 1.0, 0.0],
            ],
            &Device::Cpu,
        )
        .expect("tensor");
        let content = [false, true, true, true, true, true];
        let table = NeighbourTable::build(&e, &content, 2).expect("table");
        assert_eq!(table.neighbours[1][0].0, 1, "itself first");
        assert_eq!(table.neighbours[1][1].0, 2, "then links");
        assert!(table.neighbours[0].is_empty());
        let p = [0.0f32, 0.30, 0.25, 0.35, 0.05, 0.05];
        let logits: Vec<f32> = p
            .iter()
            .map(|x| if *x > 0.0 { x.ln() } else { -30.0 })
            .collect();
        let config = SemSamConfig {
            k: 2,
            top_m: 4,
            top_p: 0.99,
        };
        assert_eq!(table.choose(&logits, &config), 1);
        // With only the top candidate allowed, SemSam is greedy.
        assert_eq!(
            table.choose(&logits, &SemSamConfig { top_m: 1, ..config }),
            3
        );
        // A special token among the candidates: decode as usual.
        let mut special = logits.clone();
        special[0] = (0.2f32).ln();
        assert_eq!(table.choose(&special, &config), 3);
    }

    #[test]
    fn the_table_round_trips_through_its_cache_file() {
        let e =
            Tensor::new(&[[1.0f32, 0.0], [0.9, 0.1], [0.0, 1.0]], &Device::Cpu).expect("tensor");
        let content = [true, true, false];
        let path =
            std::env::temp_dir().join(format!("gg-semsam-{}.safetensors", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let built = NeighbourTable::cached(&path, &e, &content, 2).expect("build");
        assert!(path.exists());
        let loaded = NeighbourTable::cached(&path, &e, &content, 2).expect("load");
        assert_eq!(built, loaded);
    }
}
