package dev.goldfinch.cli;

import dev.goldfinch.model.ModelConfig;
import dev.goldfinch.model.ModelConverter;
import dev.goldfinch.model.WeightFormat;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
        mixinStandardHelpOptions = true,
        name = "convert",
        description = "Convert a released PyTorch checkpoint (.pth) to safetensors + config.json, in Java.",
        footer = {"", "Example:", "  goldfinch convert rwkv-goldfinch.pth models/goldfinch --quantize q8_0"})
final class ConvertCommand implements Callable<Integer> {
    @Parameters(
            index = "0",
            paramLabel = "IN.pth",
            description = "A torch.save checkpoint (zip archive of bf16 tensors).")
    Path in;

    @Parameters(
            index = "1",
            paramLabel = "OUT_DIR",
            description = "Directory to write model.safetensors and config.json into.")
    Path outDir;

    @Option(
            names = "--quantize",
            paramLabel = "none|q8_0",
            defaultValue = "none",
            description =
                    "Store the matrices as Q8_0 (int8 blocks of 32 with an f16 scale, as a load with --quantize q8_0 makes them).")
    String quantize;

    @Override
    public Integer call() throws IOException {
        ProgressBar bar = new ProgressBar("converting " + in.getFileName());
        ModelConfig c = ModelConverter.convert(in, outDir, WeightFormat.parse(quantize), bar::update);
        bar.done();
        System.out.println("wrote " + outDir.resolve(ModelConverter.WEIGHTS_FILE) + " ("
                + c.architecture().displayName() + ", " + c.nLayer() + " layers, width " + c.nEmbd() + ", "
                + c.parameterCount() + " parameters) and config.json");
        return 0;
    }
}
