package dev.goldfinch.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

@Command(
        name = "plot",
        mixinStandardHelpOptions = true,
        description =
                "Draws PNG plots from 'bench engine --json' results: prefill time against prompt length, decode tokens/s against batch size.")
final class BenchPlotCommand implements Callable<Integer> {
    @Parameters(
            arity = "1..*",
            paramLabel = "RESULT.json",
            description = "One or more 'bench engine --json' outputs (one series each).")
    List<Path> results;

    @Option(
            names = "--out",
            defaultValue = ".",
            description = "Directory for prefill.png and decode.png (default: ${DEFAULT-VALUE}).")
    Path out;

    @Override
    public Integer call() throws Exception {
        JsonMapper json = JsonMapper.builder().build();
        XYChart prefill = new XYChartBuilder()
                .width(800)
                .height(500)
                .title("Prefill time against prompt length")
                .xAxisTitle("prompt tokens")
                .yAxisTitle("seconds")
                .build();
        XYChart decode = new XYChartBuilder()
                .width(800)
                .height(500)
                .title("Decode throughput against batch size")
                .xAxisTitle("sequences per step")
                .yAxisTitle("tokens/s")
                .build();
        List<JsonNode> runs = new ArrayList<>();
        for (Path file : results) {
            JsonNode top = json.readTree(Files.readAllBytes(file));
            if (top.has("by_dtype")) { // several dtypes in one run: one series each
                for (Map.Entry<String, JsonNode> e : top.get("by_dtype").properties()) {
                    runs.add(((tools.jackson.databind.node.ObjectNode)
                                    e.getValue().deepCopy())
                            .put("shape", top.get("shape").asString()));
                }
            } else {
                runs.add(top);
            }
        }
        for (JsonNode r : runs) {
            String name = r.get("shape").asString() + " " + r.get("dtype").asString();
            List<Double> lengths = new ArrayList<>();
            List<Double> seconds = new ArrayList<>();
            for (Map.Entry<String, JsonNode> e : r.get("prefill_tps").properties()) {
                double n = Double.parseDouble(e.getKey());
                lengths.add(n);
                seconds.add(n / e.getValue().asDouble());
            }
            if (!lengths.isEmpty()) {
                prefill.addSeries(name, lengths, seconds);
            }
            Map<String, List<double[]>> byContext = new java.util.TreeMap<>();
            for (Map.Entry<String, JsonNode> e : r.get("decode_tps").properties()) {
                String[] parts = e.getKey().split("_ctx");
                byContext.computeIfAbsent(parts[1], k -> new ArrayList<>()).add(new double[] {
                    Double.parseDouble(parts[0].substring(1)), e.getValue().asDouble()
                });
            }
            for (Map.Entry<String, List<double[]>> c : byContext.entrySet()) {
                decode.addSeries(
                        name + ", context " + c.getKey(),
                        c.getValue().stream().map(p -> p[0]).toList(),
                        c.getValue().stream().map(p -> p[1]).toList());
            }
        }
        Files.createDirectories(out);
        BitmapEncoder.saveBitmap(prefill, out.resolve("prefill.png").toString(), BitmapEncoder.BitmapFormat.PNG);
        BitmapEncoder.saveBitmap(decode, out.resolve("decode.png").toString(), BitmapEncoder.BitmapFormat.PNG);
        System.out.println("wrote " + out.resolve("prefill.png") + " and " + out.resolve("decode.png"));
        return 0;
    }
}
