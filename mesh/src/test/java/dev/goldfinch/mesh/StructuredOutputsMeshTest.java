package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import dev.goldfinch.model.constrain.JsonGrammar;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import tools.jackson.databind.JsonNode;

/**
 * Structured outputs through the real mesh (embedded store, random weights, the World vocabulary): for 200 seeds
 * and each schema, the answer parses and validates; tool calls come back as tool_calls whose arguments validate.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class StructuredOutputsMeshTest {
    static final int SEEDS = 200;
    static final SchemaRegistry SCHEMAS = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12);

    /** Bounded schemas (every keyword of the subset among them): each output must finish within its bound. */
    static final List<String> BOUNDED = List.of("""
            {"type":"object","properties":{
              "name":{"type":"string","minLength":1,"maxLength":12},
              "age":{"type":"integer","minimum":0,"maximum":150},
              "score":{"type":"number","minimum":-5,"maximum":5},
              "admin":{"type":"boolean"},
              "nick":{"anyOf":[{"type":"string","maxLength":6},{"type":"null"}]},
              "tags":{"type":"array","items":{"enum":["a","bé","c\\"q"]},"minItems":1,"maxItems":3}},
             "required":["name","age","admin","tags"],"additionalProperties":false}""", """
            {"$defs":{"point":{"type":"object","properties":{"x":{"type":"integer","exclusiveMinimum":-10,"exclusiveMaximum":10},
                                                            "y":{"type":"integer","minimum":-3,"maximum":1234}},
                                "required":["x","y"],"additionalProperties":false}},
             "type":"object","properties":{"from":{"$ref":"#/$defs/point"},"to":{"$ref":"#/$defs/point"},
                                           "label":{"const":"edge"}},
             "required":["from","to","label"],"additionalProperties":false}""", """
            {"type":"array","items":{"type":["string","integer","null"],"maxLength":4,"minimum":7,"maximum":12},"maxItems":4}""");

    MeshLauncher mesh;
    MeshClient client;

    @BeforeAll
    void startMesh() {
        mesh = MeshLauncher.start(MeshEndToEndTest.smallMesh(2, Map.of("logging.level.root", "WARN")));
        client = new MeshClient(mesh.httpPort("gateway"), mesh.grpcPort("gateway"));
    }

    @AfterAll
    void stopMesh() {
        if (client != null) {
            client.close();
        }
        if (mesh != null) {
            mesh.close();
        }
    }

    @Test
    void everySeedGivesSchemaValidJson() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(16);
        try {
            for (String schemaText : BOUNDED) {
                JsonNode schema = MeshClient.JSON.readTree(schemaText);
                Schema validator = SCHEMAS.getSchema(schemaText);
                long bound = JsonGrammar.compile(schemaText, WorldTokenizer.world(), "schema")
                        .maxTokens();
                assertTrue(bound > 0 && bound <= MeshEndToEndTest.CAP, "bound " + bound);
                List<Future<MeshClient.Reply>> replies = new ArrayList<>();
                for (int seed = 0; seed < SEEDS; seed++) {
                    Map<String, Object> request = MeshEndToEndTest.body(
                            "messages",
                            List.of(MeshEndToEndTest.body("role", "user", "content", "Describe it as JSON.")),
                            "response_format",
                            MeshEndToEndTest.body(
                                    "type",
                                    "json_schema",
                                    "json_schema",
                                    MeshEndToEndTest.body("name", "t", "schema", schema, "strict", true)),
                            "temperature",
                            1.0,
                            "seed",
                            seed,
                            "max_tokens",
                            bound);
                    replies.add(pool.submit(() -> client.post("/v1/chat/completions", request)));
                }
                for (int seed = 0; seed < SEEDS; seed++) {
                    MeshClient.Reply r = replies.get(seed).get();
                    assertEquals(200, r.status(), r.body().toString());
                    String content = r.body().at("/choices/0/message/content").asString();
                    assertEquals("stop", r.body().at("/choices/0/finish_reason").asString(), content);
                    JsonNode parsed = MeshClient.JSON.readTree(content);
                    assertEquals(List.of(), validator.validate(parsed), "seed " + seed + ": " + content);
                }
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void toolCallsAreForcedValidAndStreamed() throws Exception {
        Map<String, Object> params = MeshEndToEndTest.body(
                "type",
                "object",
                "properties",
                MeshEndToEndTest.body(
                        "city",
                        MeshEndToEndTest.body("type", "string", "maxLength", 10),
                        "days",
                        MeshEndToEndTest.body("type", "integer", "minimum", 1, "maximum", 7)),
                "required",
                List.of("city", "days"),
                "additionalProperties",
                false);
        Schema validator = SCHEMAS.getSchema(MeshClient.JSON.writeValueAsString(params));
        List<Object> tools = List.of(
                MeshEndToEndTest.body(
                        "type",
                        "function",
                        "function",
                        MeshEndToEndTest.body("name", "forecast", "parameters", params)),
                MeshEndToEndTest.body("type", "function", "function", MeshEndToEndTest.body("name", "noop")));
        for (int seed = 0; seed < 20; seed++) {
            MeshClient.Reply r = client.post(
                    "/v1/chat/completions",
                    MeshEndToEndTest.body(
                            "messages",
                            List.of(MeshEndToEndTest.body("role", "user", "content", "Weather in Oslo this week?")),
                            "tools",
                            tools,
                            "tool_choice",
                            MeshEndToEndTest.body(
                                    "type", "function", "function", MeshEndToEndTest.body("name", "forecast")),
                            "parallel_tool_calls",
                            seed % 2 == 0,
                            "seed",
                            seed,
                            "max_tokens",
                            200));
            assertEquals(200, r.status(), r.body().toString());
            JsonNode choice = r.body().at("/choices/0");
            assertEquals("tool_calls", choice.get("finish_reason").asString(), choice.toString());
            JsonNode calls = choice.at("/message/tool_calls");
            assertTrue(calls.size() >= 1 && (seed % 2 == 0 || calls.size() == 1), choice.toString());
            for (JsonNode call : calls) {
                assertEquals("forecast", call.at("/function/name").asString());
                JsonNode args =
                        MeshClient.JSON.readTree(call.at("/function/arguments").asString());
                assertEquals(List.of(), validator.validate(args), call.toString());
            }
        }
        // Streamed, the call arrives as delta.tool_calls and nothing else.
        List<String> events = new ArrayList<>();
        MeshClient.Generation g = client.stream(
                "/v1/chat/completions",
                MeshEndToEndTest.body(
                        "messages",
                        List.of(MeshEndToEndTest.body("role", "user", "content", "Weather?")),
                        "tools",
                        tools,
                        "tool_choice",
                        "required",
                        "seed",
                        3,
                        "max_tokens",
                        200,
                        "stream",
                        true),
                events);
        assertEquals("tool_calls", g.finishReason());
        assertEquals("", g.text());
        assertTrue(events.stream().anyMatch(e -> e.contains("\"tool_calls\":[{\"index\":0")), events.toString());
    }
}
