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
   ``softmax (x W_v^T)`` (reassociated);
3. adds the positions to each point's image side once per layer, into memory already
   written (fresh memory costs the CPU a page fault per 4 KB), and makes the
   image-to-token residual sum in place;
4. runs the last token-to-image attention only for the tokens read after it (the IoU
   token and the three multimask tokens: 4 of 7);
5. predicts every mask's IoU from the transformer's tokens, and runs the decoder's
   upscaling network only for points with a mask that passed ``pred_iou_thresh`` (the
   others' image sides are dropped at once), and the hypernetwork product only for
   those masks.

The filters, the chunked upscaling and the records are ``MaskGenerator``'s, so the
records' scores are the stock ones to float precision. Use it on a
``load_sam(..., fast=True)`` model to have the image encoder fast too.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.modeling.transformer import Attention as DecoderAttention
from segment_anything.modeling.transformer import TwoWayAttentionBlock

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


def _softmax_(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """``torch.softmax`` written over its input on the CPU (no fresh memory), else a copy."""
    if logits.device.type == "cpu":
        return torch.softmax(logits, dim, out=logits)
    return torch.softmax(logits, dim)


def _head_weight(linear: torch.nn.Linear, heads: int) -> torch.Tensor:
    """A projection's weight ``(heads * d, C)`` as ``(heads, d, C)``."""
    return linear.weight.reshape(heads, -1, linear.weight.shape[-1])


def _tokens_to_image(
    attn: DecoderAttention, q: torch.Tensor, keys: torch.Tensor, keys_pos: torch.Tensor
) -> torch.Tensor:
    """Token-to-image attention over per-point keys, without projecting the image side.

    ``(q W_k) (keys + pos)^T`` and ``(softmax keys) W_v^T``: the same sums, reassociated.
    The key bias adds a constant to a query's logits (the softmax ignores it); the value
    bias passes through whole (the weights sum to 1).

    Args:
        attn: The attention module.
        q: Token queries (tokens + their embedding), shape ``(B, T, C)``.
        keys: The image side, shape ``(B, HW, C)``.
        keys_pos: ``keys + pos``, shape ``(B, HW, C)``.

    Returns:
        Shape ``(B, T, C)``: the same as ``attn(q=q, k=keys_pos, v=keys)``.
    """
    heads = attn.num_heads
    qh = _heads(attn.q_proj(q), heads)  # (B, h, T, d)
    b, _, t, d = qh.shape
    qk = (qh * (1.0 / np.sqrt(d))) @ _head_weight(attn.k_proj, heads)  # (B, h, T, C)
    logits = torch.bmm(qk.reshape(b, heads * t, -1), keys_pos.transpose(1, 2))
    pooled = torch.bmm(_softmax_(logits, -1), keys).reshape(b, heads, t, -1)
    wv = _head_weight(attn.v_proj, heads)
    out = pooled @ wv.transpose(-2, -1) + attn.v_proj.bias.reshape(heads, 1, d)  # (B, h, T, d)
    result: torch.Tensor = attn.out_proj(out.transpose(1, 2).reshape(b, t, heads * d))
    return result


def _image_to_token_weights(
    attn: DecoderAttention, image_pos: torch.Tensor, kh: torch.Tensor
) -> torch.Tensor:
    """The softmax weights of image-to-token attention, ``(B, h * T, HW)``.

    A shared image side ``(1, HW, C)`` is projected once; a per-point one ``(B, HW, C)``
    is never projected: ``k_h (W_q,h x^T + b_q,h) = (k_h W_q,h) x^T + k_h b_q,h``, a
    fraction of the work with a few tokens. The softmax runs over the tokens of each
    head, along the long axis (it vectorizes).
    """
    heads = attn.num_heads
    b, _, t, d = kh.shape
    kh = kh * (1.0 / np.sqrt(d))
    if image_pos.shape[0] == 1:  # (h, B*T, d) @ (h, d, HW): one product per head
        qh = _heads(attn.q_proj(image_pos), heads)[0]  # (h, HW, d), once for all points
        logits = torch.bmm(kh.transpose(0, 1).reshape(heads, b * t, d), qh.transpose(1, 2))
        weights = _softmax_(logits.reshape(heads, b, t, -1), 2).transpose(0, 1)
        return weights.reshape(b, heads * t, -1)
    kq = (kh @ _head_weight(attn.q_proj, heads)).reshape(b, heads * t, -1)  # (B, h*T, C)
    bias = kh @ attn.q_proj.bias.reshape(heads, d, 1)  # (B, h, T, 1)
    logits = torch.baddbmm(bias.reshape(b, heads * t, 1), kq, image_pos.transpose(1, 2))
    return _softmax_(logits.reshape(b, heads, t, -1), 2).reshape(b, heads * t, -1)


def _image_to_tokens(
    attn: DecoderAttention,
    image: torch.Tensor,
    image_pos: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    in_place: bool = False,
) -> torch.Tensor:
    """The image side plus its attention to the tokens, with a folded output projection.

    Args:
        attn: The attention module.
        image: The image side, shape ``(1, HW, C)`` (shared by all points) or
            ``(B, HW, C)``.
        image_pos: ``image + pos``, the same shape.
        k: Token keys (tokens + their embedding), shape ``(B, T, C)``.
        v: Token values, shape ``(B, T, C)``.
        in_place: Write the result over a per-point ``image`` (not needed after).

    Returns:
        Shape ``(B, HW, C)``: ``image + attn(q=image + pos, k=k, v=v)``, the residual
        added inside the last product.
    """
    heads = attn.num_heads
    kh = _heads(attn.k_proj(k), heads)  # (B, h, T, d)
    vh = _heads(attn.v_proj(v), heads)  # (B, h, T, d)
    b, _, t, d = kh.shape
    weights = _image_to_token_weights(attn, image_pos, kh)  # (B, h*T, HW)
    w_out = attn.out_proj.weight  # (C, h*d)
    # V_h W_o,h for each head: (B, h, T, C). Each head's weights sum to 1 over the
    # tokens, so adding bias / heads to every folded value adds the bias once.
    folded = vh @ w_out.reshape(w_out.shape[0], heads, d).permute(1, 2, 0)
    folded = folded + attn.out_proj.bias / heads
    # image + (B, HW, h*T) @ (B, h*T, C); the transpose is free for the product
    update = (weights.transpose(1, 2), folded.reshape(b, heads * t, -1))
    if in_place:
        return image.baddbmm_(*update)
    return torch.baddbmm(image.expand(b, -1, -1), *update)


def _first_layer(
    layer: TwoWayAttentionBlock, tokens: torch.Tensor, src: torch.Tensor, pos: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first two-way layer with the image side ``src`` ``(1, HW, C)`` shared by all points.

    Returns:
        The tokens ``(B, T, C)``, the per-point image side ``(B, HW, C)``, and a tensor of
        its shape free to be written over (the sum before the last layer norm).
    """
    if layer.skip_first_layer_pe:  # no positional encoding on the tokens' self-attention
        queries = layer.self_attn(q=tokens, k=tokens, v=tokens)
    else:
        q = tokens + tokens
        queries = tokens + layer.self_attn(q=q, k=q, v=tokens)
    queries = layer.norm1(queries)
    src_pos = src + pos
    attn_out = _attend(layer.cross_attn_token_to_image, queries + tokens, src_pos, src)
    queries = layer.norm2(queries + attn_out)
    queries = layer.norm3(queries + layer.mlp(queries))
    attn = layer.cross_attn_image_to_token
    summed = _image_to_tokens(attn, src, src_pos, queries + tokens, queries)
    return queries, layer.norm4(summed), summed


def _later_layer(
    layer: TwoWayAttentionBlock,
    queries: torch.Tensor,
    tokens: torch.Tensor,
    keys: torch.Tensor,
    keys_pos: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A two-way layer after the first, on per-point keys (``keys_pos`` is ``keys + pos``).

    Returns:
        The tokens ``(B, T, C)`` and the image side ``(B, HW, C)``.
    """
    if layer.skip_first_layer_pe:
        queries = layer.self_attn(q=queries, k=queries, v=queries)
    else:
        q = queries + tokens
        queries = queries + _attend(layer.self_attn, q, q, queries)
    queries = layer.norm1(queries)
    attn_out = _tokens_to_image(layer.cross_attn_token_to_image, queries + tokens, keys, keys_pos)
    queries = layer.norm2(queries + attn_out)
    queries = layer.norm3(queries + layer.mlp(queries))
    attn = layer.cross_attn_image_to_token
    summed = _image_to_tokens(attn, keys, keys_pos, queries + tokens, queries, in_place=True)
    keys = layer.norm4(summed)  # the keys given are written over: they are not needed after
    return queries, keys


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
        queries, keys, iou_pred = self._decode_tokens(coords)
        rows = torch.arange(coords.shape[0], device=coords.device)
        if self.pred_iou_thresh > 0.0:  # only points with a mask that passes are upscaled
            wanted = torch.any(iou_pred > self.pred_iou_thresh, dim=1)
            if not torch.all(wanted):  # a copy of those only; the batch's are freed
                keys = keys[wanted]
            rows = torch.cumsum(wanted, dim=0) - 1  # point -> its row in keys
        return iou_pred, lambda point_index, mask_index: self._low_res_masks(
            queries, keys, point_index, rows[point_index], mask_index
        )

    def _decode_tokens(
        self, coords: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the prompt decoder's transformer for single positive points.

        Args:
            coords: Points in the model's input frame, shape ``(B, 2)``.

        Returns:
            The tokens of the IoU and the three multimask outputs ``(B, 4, C)``, the image
            side ``(B, HW, C)``, and the IoU predictions of the multimask outputs ``(B, 3)``.
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
        # (1, HW, C) each, contiguous: they are read once per point
        src = (self.predictor.features + dense[:1]).flatten(2).transpose(1, 2).contiguous()
        pos = model.prompt_encoder.get_dense_pe().flatten(2).transpose(1, 2).contiguous()
        layers = list(transformer.layers)
        queries, keys, spare = _first_layer(layers[0], tokens, src, pos)
        for layer in layers[1:]:  # the stock block, reassociated (no projected image side)
            keys_pos = torch.add(keys, pos, out=spare)  # written over: no fresh memory
            queries, keys = _later_layer(layer, queries, tokens, keys, keys_pos)
        # The last attention only for the tokens used: IoU and the multimask outputs
        used = [0, *range(2, 1 + decoder.num_mask_tokens)]
        queries, tokens = queries[:, used], tokens[:, used]
        final = transformer.final_attn_token_to_image
        keys_pos = torch.add(keys, pos, out=spare)
        attn_out = _tokens_to_image(final, queries + tokens, keys, keys_pos)
        queries = transformer.norm_final_attn(queries + attn_out)
        iou_pred = decoder.iou_prediction_head(queries[:, 0, :])[:, 1:]
        return queries, keys, iou_pred

    def _low_res_masks(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        point_index: torch.Tensor,
        rows: torch.Tensor,
        mask_index: torch.Tensor,
    ) -> torch.Tensor:
        """Upscale and predict only the selected masks (multimask outputs 1..3).

        Args:
            queries: The tokens of the IoU and the multimask outputs, shape ``(B, 4, C)``.
            keys: The transformer's image side of the points kept, shape ``(K, HW, C)``.
            point_index: For each wanted mask, its point, shape ``(M,)``.
            rows: For each wanted mask, its point's row in ``keys``, shape ``(M,)``.
            mask_index: For each wanted mask, its multimask output (0..2), shape ``(M,)``.

        Returns:
            Low-resolution mask logits, shape ``(M, 4h, 4w)``.
        """
        decoder = self.predictor.model.mask_decoder
        _, c, h, w = self.predictor.features.shape
        points, inverse = torch.unique(rows, return_inverse=True)
        src = keys[points].transpose(1, 2).reshape(len(points), c, h, w)
        upscaled = decoder.output_upscaling(src)  # (P, C', 4h, 4w)
        _, c_up, h_up, w_up = upscaled.shape
        hyper = queries.new_empty(len(rows), c_up)
        for j in range(3):  # multimask output j is mask token j + 1, here at token j + 1
            chosen = mask_index == j
            if torch.any(chosen):
                mlp = decoder.output_hypernetworks_mlps[j + 1]
                hyper[chosen] = mlp(queries[point_index[chosen], j + 1])
        flat = upscaled.reshape(len(points), c_up, h_up * w_up)[inverse]  # (M, C', HW')
        return (hyper[:, None, :] @ flat).reshape(-1, h_up, w_up)
