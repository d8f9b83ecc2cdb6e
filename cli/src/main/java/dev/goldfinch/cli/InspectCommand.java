package dev.goldfinch.cli;

import dev.goldfinch.model.CacheSizes;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.ModelConfig;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.node.ObjectNode;

/** Sizes of a model and of its cache next to a transformer's KV cache, as JSON. */
@Command(
        mixinStandardHelpOptions = true,
        name = "inspect",
        description = "Print a model's architecture, parameter count and cache sizes as JSON.",
        footer = {"", "Example:", "  goldfinch inspect --shape L24-D2048"})
final class InspectCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Override
    public Integer call() {
        ObjectMapper json = new ObjectMapper();
        ObjectNode o = json.createObjectNode();
        ModelConfig c;
        if (model.source.model != null) {
            try (GoldFinchModel m = model.load()) {
                c = m.config();
                o.put("fingerprint", m.weights().fingerprintHex());
                o.put("weight_bytes", m.weights().weightBytes());
            }
        } else {
            c = model.config();
        }
        CacheSizes sizes = CacheSizes.of(c);
        o.put("architecture", c.architecture().displayName());
        o.put("params", c.parameterCount());
        o.put("n_layer", c.nLayer());
        o.put("n_embd", c.nEmbd());
        o.put("head_size", c.headSize());
        o.put("n_head", c.nHead());
        o.put("dim_ffn", c.dimFfn());
        o.put("vocab_size", c.vocabSize());
        o.put("finch_layers", c.finchLayers());
        o.put("gold_layers", c.goldLayers());
        o.put("compressed_key_dim", c.compressedDim());
        o.put("cache_fixed_bytes", sizes.fixedBytes());
        o.put("cache_bytes_per_token", sizes.bytesPerToken());
        o.put("cache_fixed_bytes_f32", sizes.fixedBytesF32());
        o.put("cache_bytes_per_token_f32", sizes.bytesPerTokenF32());
        o.put("transformer_kv_bytes_per_token", sizes.transformerKvBytesPerToken());
        o.put("compression_ratio", Math.round(sizes.compressionRatio() * 10) / 10.0);
        // What a live sequence holds beyond the cache: its GOLD keys and values, per --kv-format.
        var live = o.putObject("live_kv_bytes_per_token");
        for (dev.goldfinch.model.state.KvFormat f : dev.goldfinch.model.state.KvFormat.values()) {
            live.put(f.label(), f.liveBytesPerToken(c));
        }
        System.out.println(json.writerWithDefaultPrettyPrinter().writeValueAsString(o));
        return 0;
    }
}
