"""``FastMaskGenerator``: samkit's automatic mask generator with a faster decoder.

It subclasses ``samkit.generator.MaskGenerator`` (the generator under every samkit
entry point: memory bounded by chunks, float32 prompts, no crash when nothing passes)
and replaces only the decoding of one batch of grid points
(``MaskGenerator.decode_points``). Where the stock decoder repeats the whole image
embedding once per point and decodes every mask, this one:

1. runs the first two-way layer of the prompt decoder with the image side shared by all
   points: the token-to-image keys and values and the image-to-token queries are
   projected once, not once per point (the same numbers, broadcast);
2. folds each image-to-token output projection into the values (``softmax(QK^T) V W_o
   = softmax(QK^T) (V W_o)``); never projects a per-point image side: with a few tokens
   ``(q W_k) x^T`` and ``(softmax x) W_v^T`` cost a fraction of ``q (x W_k^T)^T`` and
   ``softmax (x W_v^T)``, and the shared positions enter as one product (reassociated);
3. predicts every mask's IoU from the transformer's tokens, and runs the decoder's
   upscaling network only for points with a mask that passed ``pred_iou_thresh``, and
   the hypernetwork product only for those masks.

The filters, the chunked upscaling and the records are ``MaskGenerator``'s, so the
records' scores are the stock ones to float precision. Use it on a
``load_sam(..., fast=True)`` model to have the image encoder fast too.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.modeling.transformer import Attention as DecoderAttention

from samkit.amg.generator import Decoded, MaskGenerator


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(B, N, C)`` -> ``(B, heads, N, C / heads)``."""
    b, n, c = x.shape
    return x.reshape(b, n, num_heads, c // num_heads).transpose(1, 2)


def _attend(
    attn: DecoderAttention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """The decoder's ``Attention.forward`` with projections that broadcast over points.

    Args:
        attn: The attention module (its weights).
        q: Queries, shape ``(B or 1, Nq, C)``.
        k: Keys, shape ``(B or 1, Nk, C)``.
        v: Values, shape ``(B or 1, Nk, C)``.

    Returns:
        Shape ``(B, Nq, C)``.
    """
    qh = _heads(attn.q_proj(q), attn.num_heads)
    kh = _heads(attn.k_proj(k), attn.num_heads)
    vh = _heads(attn.v_proj(v), attn.num_heads)
    b, heads, n, d = qh.shape
    if kh.shape[0] == 1 and b > 1:  # keys shared by every point: one batch of B * N queries
        qh = qh.transpose(0, 1).reshape(1, heads, b * n, d)
    elif qh.shape[0] != kh.shape[0]:  # fused attention wants one batch size
        size = max(qh.shape[0], kh.shape[0])
        qh, kh, vh = (t.expand(size, -1, -1, -1) for t in (qh, kh, vh))
    # softmax(Q K^T / sqrt(d)) V in one fused call: no copies of the strided heads
    out = F.scaled_dot_product_attention(qh, kh, vh)
    out = out.reshape(heads, -1, n, d).transpose(0, 1) if out.shape[0] != b else out
    b, heads, n, d = out.shape
    result: torch.Tensor = attn.out_proj(out.transpose(1, 2).reshape(b, n, heads * d))
    return result


def _logits_against_image(
    small: torch.Tensor, image: torch.Tensor, pos: torch.Tensor
) -> torch.Tensor:
    """``small @ (image + pos)^T`` without adding ``pos`` to every point's image side.

    Args:
        small: Shape ``(B, N, C)``, ``N`` small (heads x tokens).
        image: Per-point image side, shape ``(B, HW, C)``.
        pos: Shared positions, shape ``(1, HW, C)``.

    Returns:
        Shape ``(B, N, HW)``.
    """
    b, n, c = small.shape
    shared = (small.reshape(b * n, c) @ pos[0].T).reshape(b, n, -1)  # one product
    return torch.baddbmm(shared, small, image.transpose(1, 2))


def _attend_tokens_to_image(
    attn: DecoderAttention, q: torch.Tensor, keys: torch.Tensor, pos: torch.Tensor
) -> torch.Tensor:
    """Token-to-image attention over per-point keys, without projecting the image side.

    ``(q W_k) (keys + pos)^T`` and ``(softmax keys) W_v^T``: the same sums, reassociated.
    The key bias adds a constant to a query's logits (the softmax ignores it); the value
    bias passes through whole (the weights sum to 1).

    Args:
        attn: The attention module.
        q: Token queries (tokens + their embedding), shape ``(B, T, C)``.
        keys: The image side, shape ``(B, HW, C)``.
        pos: Its positions, shared, shape ``(1, HW, C)``.

    Returns:
        Shape ``(B, T, C)``: the same as ``attn(q=q, k=keys + pos, v=keys)``.
    """
    heads = attn.num_heads
    qh = _heads(attn.q_proj(q), heads)  # (B, h, T, d)
    b, _, t, d = qh.shape
    c = keys.shape[-1]
    qk = (qh @ attn.k_proj.weight.reshape(heads, d, c)).reshape(b, heads * t, c)
    weights = torch.softmax(_logits_against_image(qk, keys, pos) / np.sqrt(d), dim=-1)
    pooled = (weights @ keys).reshape(b, heads, t, c)  # (B, h, T, C)
    wv = attn.v_proj.weight.reshape(heads, d, c)
    out = pooled @ wv.transpose(-2, -1) + attn.v_proj.bias.reshape(heads, 1, d)  # (B, h, T, d)
    result: torch.Tensor = attn.out_proj(out.transpose(1, 2).reshape(b, t, heads * d))
    return result


def _image_to_token_logits(
    attn: DecoderAttention, image: torch.Tensor, pos: torch.Tensor, kh: torch.Tensor
) -> torch.Tensor:
    """The logits of image-to-token attention, ``(B, h, T, HW)``, scaled by ``1/sqrt(d)``.

    A shared image side ``(1, HW, C)`` is projected once; a per-point one ``(B, HW, C)``
    is never projected: ``k_h (W_q,h x^T + b_q,h) = (k_h W_q,h) x^T + k_h b_q,h``, a
    fraction of the work with a few tokens.
    """
    heads = attn.num_heads
    b, _, t, d = kh.shape
    if image.shape[0] == 1:
        qh = _heads(attn.q_proj(image + pos), heads)  # (1, h, HW, d), once for all points
        return (kh @ qh.transpose(-2, -1)) / np.sqrt(d)
    c = image.shape[-1]
    kq = (kh @ attn.q_proj.weight.reshape(heads, d, c)).reshape(b, heads * t, c)
    bias = kh @ attn.q_proj.bias.reshape(heads, d, 1)  # (B, h, T, 1)
    logits = _logits_against_image(kq, image, pos).reshape(b, heads, t, -1) + bias
    return logits / np.sqrt(d)


def _attend_image_to_tokens(
    attn: DecoderAttention,
    image: torch.Tensor,
    pos: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
) -> torch.Tensor:
    """The image side plus its attention to the tokens, with a folded output projection.

    Args:
        attn: The attention module.
        image: The image side, shape ``(1, HW, C)`` (shared by all points) or
            ``(B, HW, C)``.
        pos: Its positions, shape ``(1, HW, C)``.
        k: Token keys (tokens + their embedding), shape ``(B, T, C)``.
        v: Token values, shape ``(B, T, C)``.

    Returns:
        Shape ``(B, HW, C)``: ``image + attn(q=image + pos, k=k, v=v)``, the residual
        added inside the last product.
    """
    heads = attn.num_heads
    kh = _heads(attn.k_proj(k), heads)  # (B, h, T, d)
    vh = _heads(attn.v_proj(v), heads)  # (B, h, T, d)
    d = kh.shape[-1]
    # (B, h, T, HW): the softmax over the tokens runs along the long axis, which vectorizes
    weights = torch.softmax(_image_to_token_logits(attn, image, pos, kh), dim=-2)
    w_out = attn.out_proj.weight  # (C, h*d)
    # V_h W_o,h for each head: (B, h, T, C)
    folded = vh @ w_out.reshape(w_out.shape[0], heads, d).permute(1, 2, 0)
    # Each head's weights sum to 1 over the tokens, so adding bias / heads to every folded
    # value adds the bias once to the output: no pass over the (B, HW, C) result for it.
    folded = folded + attn.out_proj.bias / heads
    b, _, t, hw = weights.shape
    # image + (B, HW, h*T) @ (B, h*T, C); the transpose is free for the product
    out: torch.Tensor = torch.baddbmm(
        image.expand(b, -1, -1),
        weights.reshape(b, heads * t, hw).transpose(1, 2),
        folded.reshape(b, heads * t, -1),
    )
    return out


class FastMaskGenerator(MaskGenerator):
    """A drop-in for ``SamAutomaticMaskGenerator``: the same arguments and records.

    ``generate(image)`` returns the same list of dicts (``segmentation``, ``area``,
    ``bbox``, ``predicted_iou``, ``point_coords``, ``stability_score``, ``crop_box``)
    as the stock generator on the same model, computed with less work per point (see
    the module's description).

    Example:
        ```python
        sam = samkit.load_sam("vit_b", fast=True)
        masks = samkit.FastMaskGenerator(sam, points_per_side=32).generate(image)
        ```
    """

    def decode_points(self, coords: torch.Tensor) -> Decoded:
        """Decode single positive points, predicting the IoU before any mask.

        Args:
            coords: Points in the model's input frame, shape ``(B, 2)``, float32.

        Returns:
            The IoU predictions ``(B, 3)`` and a function from ``(point_index,
            mask_index)`` to the low-resolution logits of only those masks
            ``(M, h, w)`` (see ``MaskGenerator.decode_points``).
        """
        queries, keys, iou_pred, shape = self._decode_tokens(coords)
        return iou_pred, lambda point_index, mask_index: self._low_res_masks(
            queries, keys, shape, point_index, mask_index
        )

    def _decode_tokens(
        self, coords: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[int, int, int]]:
        """Run the prompt decoder's transformer for single positive points.

        Args:
            coords: Points in the model's input frame, shape ``(B, 2)``.

        Returns:
            ``tokens_out`` ``(B, T, C)``, ``keys`` ``(B, HW, C)``, the IoU predictions of
            the three multimask outputs ``(B, 3)``, and ``(C, h, w)``.
        """
        model = self.predictor.model
        decoder = model.mask_decoder
        transformer = decoder.transformer
        labels = torch.ones(coords.shape[0], 1, dtype=torch.int, device=coords.device)
        sparse, dense = model.prompt_encoder(
            points=(coords[:, None, :], labels), boxes=None, masks=None
        )
        output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
        tokens = torch.cat((output_tokens.expand(sparse.shape[0], -1, -1), sparse), dim=1)

        features = self.predictor.features  # (1, C, h, w)
        _, c, h, w = features.shape
        src = (features + dense[:1]).flatten(2).permute(0, 2, 1)  # (1, HW, C), shared
        pos = model.prompt_encoder.get_dense_pe().flatten(2).permute(0, 2, 1)  # (1, HW, C)

        layers = list(transformer.layers)
        first = layers[0]
        # Layer 0 (no positional encoding on the tokens' self-attention).
        if first.skip_first_layer_pe:
            queries = first.self_attn(q=tokens, k=tokens, v=tokens)
        else:
            q = tokens + tokens
            queries = tokens + first.self_attn(q=q, k=q, v=tokens)
        queries = first.norm1(queries)
        queries = first.norm2(
            queries + _attend(first.cross_attn_token_to_image, queries + tokens, src + pos, src)
        )
        queries = first.norm3(queries + first.mlp(queries))
        keys = first.norm4(
            _attend_image_to_tokens(
                first.cross_attn_image_to_token, src, pos, queries + tokens, queries
            )
        )
        for layer in layers[1:]:  # the stock block, reassociated (no "keys + pos" formed)
            if layer.skip_first_layer_pe:
                queries = layer.self_attn(q=queries, k=queries, v=queries)
            else:
                q = queries + tokens
                queries = queries + _attend(layer.self_attn, q, q, queries)
            queries = layer.norm1(queries)
            attn_out = _attend_tokens_to_image(
                layer.cross_attn_token_to_image, queries + tokens, keys, pos
            )
            queries = layer.norm2(queries + attn_out)
            queries = layer.norm3(queries + layer.mlp(queries))
            keys = layer.norm4(
                _attend_image_to_tokens(
                    layer.cross_attn_image_to_token, keys, pos, queries + tokens, queries
                )
            )
        final = transformer.final_attn_token_to_image
        attn_out = _attend_tokens_to_image(final, queries + tokens, keys, pos)
        queries = transformer.norm_final_attn(queries + attn_out)
        iou_pred = decoder.iou_prediction_head(queries[:, 0, :])[:, 1:]
        return queries, keys, iou_pred, (c, h, w)

    def _low_res_masks(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        shape: tuple[int, int, int],
        point_index: torch.Tensor,
        mask_index: torch.Tensor,
    ) -> torch.Tensor:
        """Upscale and predict only the selected masks (multimask outputs 1..3).

        Args:
            queries: The transformer's tokens, shape ``(B, T, C)``.
            keys: The transformer's image side, shape ``(B, HW, C)``.
            shape: ``(C, h, w)`` of the embedding.
            point_index: For each wanted mask, its point, shape ``(M,)``.
            mask_index: For each wanted mask, its multimask output (0..2), shape ``(M,)``.

        Returns:
            Low-resolution mask logits, shape ``(M, 4h, 4w)``.
        """
        decoder = self.predictor.model.mask_decoder
        c, h, w = shape
        points, inverse = torch.unique(point_index, return_inverse=True)
        src = keys[points].transpose(1, 2).reshape(len(points), c, h, w)
        upscaled = decoder.output_upscaling(src)  # (P, C', 4h, 4w)
        _, c_up, h_up, w_up = upscaled.shape
        hyper = queries.new_empty(len(point_index), c_up)
        for j in range(3):  # multimask output j is mask token j + 1, at token j + 2
            chosen = mask_index == j
            if torch.any(chosen):
                mlp = decoder.output_hypernetworks_mlps[j + 1]
                hyper[chosen] = mlp(queries[point_index[chosen], j + 2])
        flat = upscaled.reshape(len(points), c_up, h_up * w_up)[inverse]  # (M, C', HW')
        return (hyper[:, None, :] @ flat).reshape(-1, h_up, w_up)
