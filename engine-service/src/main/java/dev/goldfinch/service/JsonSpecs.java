package dev.goldfinch.service;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.constrain.JsonGrammar;
import java.util.Optional;

/** The structured-output fields of the public sampling message as a {@link JsonGrammar.Spec}: one reading of them. */
public final class JsonSpecs {
    private JsonSpecs() {}

    /** Empty when the output is free text; fails, naming the field, on a prefix or optional flag without a schema. */
    public static Optional<JsonGrammar.Spec> of(dev.goldfinch.proto.v1.SamplingParams p) {
        if (!p.hasJsonSchema()) {
            if (p.hasJsonPrefix() || p.getJsonOptional()) {
                throw new GoldFinchException.InvalidInput(
                        p.hasJsonPrefix() ? "sampling.json_prefix" : "sampling.json_optional",
                        "json_prefix and json_optional apply to a json_schema, and none is set");
            }
            return Optional.empty();
        }
        if (p.getJsonOptional() && p.getJsonPrefix().isEmpty()) {
            throw new GoldFinchException.InvalidInput(
                    "sampling.json_prefix", "json_optional needs a json_prefix: the text that opens the JSON");
        }
        return Optional.of(new JsonGrammar.Spec(p.getJsonSchema(), p.getJsonPrefix(), p.getJsonOptional()));
    }
}
