"""Span attribute names of every GenAI dialect the exporter understands.

The only module that spells attribute names (normalize reads spans through it; the demo workload
writes spans through it). Each concept lists its aliases in order of preference: the current OTel
GenAI semantic conventions first, then their deprecated names, then OpenInference, OpenLLMetry /
Traceloop (old and new), the Vercel AI SDK and Langfuse. The GenAI conventions are still in
Development status, so every alias that real instrumentation emits stays accepted.
"""

from __future__ import annotations

# --- Resource ---------------------------------------------------------------------------------
SERVICE_NAME = "service.name"

# --- Operation / span type ----------------------------------------------------------------------
OPERATION_NAME = "gen_ai.operation.name"
OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
TRACELOOP_SPAN_KIND = "traceloop.span.kind"
TRACELOOP_LLM_REQUEST_TYPE = "llm.request.type"
VERCEL_OPERATION_ID = "ai.operationId"
LANGFUSE_OBSERVATION_TYPE = "langfuse.observation.type"

# Well-known values of gen_ai.operation.name.
OP_CHAT = "chat"
OP_TEXT_COMPLETION = "text_completion"
OP_GENERATE_CONTENT = "generate_content"
OP_EMBEDDINGS = "embeddings"
OP_RETRIEVAL = "retrieval"
OP_RERANK = "rerank"
OP_CREATE_AGENT = "create_agent"
OP_INVOKE_AGENT = "invoke_agent"
OP_EXECUTE_TOOL = "execute_tool"
OP_INVOKE_WORKFLOW = "invoke_workflow"
OP_PLAN = "plan"
OP_EXECUTE_TASK = "execute_task"
OP_GUARDRAIL = "guardrail"
OP_EVALUATE = "evaluate"
MEMORY_OPERATIONS = frozenset({
    "create_memory_store", "search_memory", "create_memory", "update_memory", "upsert_memory",
    "delete_memory", "delete_memory_store",
})
MODEL_OPERATIONS = frozenset({OP_CHAT, OP_TEXT_COMPLETION, OP_GENERATE_CONTENT, OP_EMBEDDINGS})
AGENT_OPERATIONS = frozenset({OP_INVOKE_AGENT, OP_CREATE_AGENT, OP_INVOKE_WORKFLOW, OP_PLAN})
RETRIEVAL_OPERATIONS = frozenset({OP_RETRIEVAL, OP_RERANK})
TOOL_OPERATIONS = frozenset({OP_EXECUTE_TOOL})

# openinference.span.kind -> gen_ai.operation.name
OPENINFERENCE_KIND_TO_OPERATION = {
    "LLM": OP_CHAT,
    "EMBEDDING": OP_EMBEDDINGS,
    "TOOL": OP_EXECUTE_TOOL,
    "AGENT": OP_INVOKE_AGENT,
    "CHAIN": OP_INVOKE_WORKFLOW,
    "RETRIEVER": OP_RETRIEVAL,
    "RERANKER": OP_RERANK,
    "GUARDRAIL": OP_GUARDRAIL,
    "EVALUATOR": OP_EVALUATE,
}
# traceloop.span.kind -> gen_ai.operation.name
TRACELOOP_KIND_TO_OPERATION = {
    "workflow": OP_INVOKE_WORKFLOW,
    "agent": OP_INVOKE_AGENT,
    "tool": OP_EXECUTE_TOOL,
    "task": OP_EXECUTE_TASK,
}
# llm.request.type (OpenLLMetry before semconv-ai 0.5.0) -> gen_ai.operation.name
TRACELOOP_REQUEST_TYPE_TO_OPERATION = {
    "chat": OP_CHAT,
    "completion": OP_TEXT_COMPLETION,
    "embedding": OP_EMBEDDINGS,
    "rerank": OP_RERANK,
}
# ai.operationId (Vercel AI SDK legacy integration) -> gen_ai.operation.name. The outer
# ai.generateText / ai.streamText spans wrap the steps of one run, like invoke_agent.
VERCEL_OPERATION_TO_OPERATION = {
    "ai.generateText.doGenerate": OP_CHAT,
    "ai.streamText.doStream": OP_CHAT,
    "ai.generateObject.doGenerate": OP_CHAT,
    "ai.streamObject.doStream": OP_CHAT,
    "ai.embed.doEmbed": OP_EMBEDDINGS,
    "ai.embedMany.doEmbed": OP_EMBEDDINGS,
    "ai.toolCall": OP_EXECUTE_TOOL,
    "ai.generateText": OP_INVOKE_AGENT,
    "ai.streamText": OP_INVOKE_AGENT,
    "ai.generateObject": OP_INVOKE_AGENT,
    "ai.streamObject": OP_INVOKE_AGENT,
}
# langfuse.observation.type -> gen_ai.operation.name
LANGFUSE_TYPE_TO_OPERATION = {
    "generation": OP_CHAT,
    "embedding": OP_EMBEDDINGS,
    "agent": OP_INVOKE_AGENT,
    "tool": OP_EXECUTE_TOOL,
    "chain": OP_INVOKE_WORKFLOW,
    "retriever": OP_RETRIEVAL,
    "evaluator": OP_EVALUATE,
    "guardrail": OP_GUARDRAIL,
}

# --- Provider ---------------------------------------------------------------------------------
PROVIDER_NAME = "gen_ai.provider.name"
PROVIDER_ALIASES = (
    PROVIDER_NAME,
    "gen_ai.system",              # deprecated in semconv 1.37; openai-v2 default mode still sends it
    "llm.provider",               # OpenInference (hosting provider)
    "llm.system",                 # OpenInference (model family)
    "ai.model.provider",          # Vercel legacy: "openai.chat" -> "openai"
)
# Old or dialect provider values -> current gen_ai.provider.name values.
PROVIDER_VALUE_ALIASES = {
    "az.ai.inference": "azure.ai.inference",
    "az.ai.openai": "azure.ai.openai",
    "azure": "azure.ai.openai",
    "vertex_ai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "google": "gcp.gen_ai",
    "xai": "x_ai",
    "mistralai": "mistral_ai",
    "mistral": "mistral_ai",
    "bedrock": "aws.bedrock",
    "aws": "aws.bedrock",
    "watsonx": "ibm.watsonx.ai",
}

# LiteLLM's litellm_provider (price table field) -> gen_ai.provider.name. Providers not listed keep their LiteLLM name.
LITELLM_PROVIDER_TO_PROVIDER = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure.ai.openai",
    "azure_text": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "mistral": "mistral_ai",
    "codestral": "mistral_ai",
    "text-completion-codestral": "mistral_ai",
    "xai": "x_ai",
    "deepseek": "deepseek",
    "bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "groq": "groq",
    "perplexity": "perplexity",
    "watsonx": "ibm.watsonx.ai",
    "voyage": "voyage_ai",
}
LITELLM_VERTEX_PROVIDER_PREFIX = "vertex_ai"
PROVIDER_GCP_VERTEX_AI = "gcp.vertex_ai"

# --- Model ------------------------------------------------------------------------------------
RESPONSE_MODEL = "gen_ai.response.model"
REQUEST_MODEL = "gen_ai.request.model"
# Response model first: it is what was billed (dated variant), the request may be an alias.
MODEL_ALIASES = (
    RESPONSE_MODEL,
    REQUEST_MODEL,
    "llm.response.model_name",    # OpenInference
    "llm.model_name",
    "llm.request.model_name",
    "embedding.model_name",
    "ai.response.model",          # Vercel legacy
    "ai.model.id",
    "langfuse.observation.model.name",
)

# --- Token usage ------------------------------------------------------------------------------
# Input tokens: semconv says they SHOULD include cached tokens; see normalize for the fallback.
INPUT_TOKENS_ALIASES = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",         # deprecated in semconv 1.27, OpenLLMetry <= 0.47
    "llm.token_count.prompt",             # OpenInference
    "ai.usage.inputTokens",               # Vercel v5+
    "ai.usage.promptTokens",              # Vercel v4
)
OUTPUT_TOKENS_ALIASES = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
    "ai.usage.outputTokens",
    "ai.usage.completionTokens",
)
TOTAL_TOKENS_ALIASES = (
    "gen_ai.usage.total_tokens",          # OpenLLMetry
    "llm.usage.total_tokens",             # OpenLLMetry (old)
    "llm.token_count.total",              # OpenInference
    "ai.usage.totalTokens",               # Vercel
    "ai.usage.tokens",                    # Vercel embeddings
)
CACHE_READ_TOKENS_ALIASES = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",       # OpenLLMetry before semconv-ai 0.5.0, Strands
    "gen_ai.usage.input_tokens.cached",           # Sentry
    "llm.token_count.prompt_details.cache_read",  # OpenInference
    "llm.token_count.prompt_details.cache_input",
    "ai.usage.cachedInputTokens",                 # Vercel
    "ai.usage.inputTokenDetails.cacheReadTokens",
)
CACHE_WRITE_TOKENS_ALIASES = (
    "gen_ai.usage.cache_write.input_tokens",      # genai repo, after PR #440
    "gen_ai.usage.cache_creation.input_tokens",   # semconv 1.40
    "gen_ai.usage.cache_creation_input_tokens",   # OpenLLMetry before semconv-ai 0.5.0
    "gen_ai.usage.input_tokens.cache_write",      # Sentry
    "llm.token_count.prompt_details.cache_write",  # OpenInference
    "ai.usage.inputTokenDetails.cacheWriteTokens",  # Vercel
)
REASONING_TOKENS_ALIASES = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
    "llm.usage.reasoning_tokens",
    "llm.token_count.completion_details.reasoning",
    "ai.usage.reasoningTokens",
    "ai.usage.outputTokenDetails.reasoningTokens",
)
# Langfuse carries usage as a JSON object with free-form keys.
LANGFUSE_USAGE_DETAILS = "langfuse.observation.usage_details"
LANGFUSE_USAGE_INPUT_KEYS = ("input", "prompt_tokens", "input_tokens")
LANGFUSE_USAGE_OUTPUT_KEYS = ("output", "completion_tokens", "output_tokens")
LANGFUSE_USAGE_CACHE_READ_KEYS = ("input_cache_read", "cache_read_input_tokens", "input_cached_tokens")
LANGFUSE_USAGE_CACHE_WRITE_KEYS = ("input_cache_creation", "cache_creation_input_tokens")

# --- Response ---------------------------------------------------------------------------------
FINISH_REASONS_ALIASES = (
    "gen_ai.response.finish_reasons",
    "ai.response.finishReason",                   # Vercel legacy (a single string)
    "gen_ai.completion.0.finish_reason",          # OpenLLMetry before 0.55
    "llm.finish_reason",                          # OpenInference
)
TIME_TO_FIRST_CHUNK_ALIASES = (
    "gen_ai.response.time_to_first_chunk",        # semconv 1.41, seconds
    "gen_ai.server.time_to_first_token",          # seconds (some SDKs put the metric on spans)
)
# Vercel reports time to first chunk in milliseconds.
TIME_TO_FIRST_CHUNK_MS_ALIASES = ("ai.response.msToFirstChunk",)
OUTPUT_TYPE = "gen_ai.output.type"
# What the request asked the output to be: json when any dialect says structured JSON was asked for.
OUTPUT_TYPE_ALIASES = (
    OUTPUT_TYPE,
    "gen_ai.openai.request.response_format",      # deprecated in semconv 1.31: json_object, json_schema
)
STRUCTURED_OUTPUT_SCHEMA = "gen_ai.request.structured_output_schema"  # OpenLLMetry: the response_format
INVOCATION_PARAMETERS_RESPONSE_FORMAT_KEY = "response_format"         # in OpenInference's parameters
RESPONSE_FORMAT_TYPE_KEY = "type"
# OpenAI response_format types that ask for JSON, as old dialects report them.
JSON_RESPONSE_FORMATS = frozenset({"json_object", "json_schema"})
# OpenInference puts the request parameters, the model among them, in one JSON attribute; on an
# error span that is the only place the model appears.
OPENINFERENCE_INVOCATION_PARAMETERS = "llm.invocation_parameters"
INVOCATION_PARAMETERS_MODEL_KEY = "model"
# Span events that mark the first streamed chunk (OpenInference; OpenLLMetry emits one per chunk):
# their time minus the span start is the time to first token.
FIRST_CHUNK_EVENT_NAMES = frozenset({"First Token Stream Event", "gen_ai.content.completion.chunk"})
# The exception event of the OTel trace semantic conventions, for spans that set no error.type.
EXCEPTION_EVENT_NAME = "exception"
EXCEPTION_TYPE = "exception.type"

# --- Agents, tools, errors ----------------------------------------------------------------------
AGENT_NAME_ALIASES = (
    "gen_ai.agent.name",
    "agent.name",                                 # OpenInference
    "ai.telemetry.functionId",                    # Vercel legacy
    "gen_ai.workflow.name",
    "traceloop.workflow.name",
)
TOOL_NAME_ALIASES = (
    "gen_ai.tool.name",
    "tool.name",                                  # OpenInference
    "ai.toolCall.name",                           # Vercel legacy
)
ERROR_TYPE = "error.type"

# --- Captured content (used only to tell empty from not captured; never becomes a label) ---------
OUTPUT_MESSAGES = "gen_ai.output.messages"        # JSON string: [{role, parts[], finish_reason}]
TOOL_CALL_RESULT_ALIASES = (
    "gen_ai.tool.call.result",
    "ai.toolCall.result",                         # Vercel legacy
    "traceloop.entity.output",                    # OpenLLMetry tool spans
)
OPENINFERENCE_OUTPUT_VALUE = "output.value"       # OpenInference TOOL and LLM spans
COMPLETION_TEXT_ALIASES = (
    "gen_ai.completion.0.content",                # OpenLLMetry before 0.55
    "llm.output_messages.0.message.content",      # OpenInference
    "ai.response.text",                           # Vercel legacy
)
COMPLETION_TOOL_CALL_ALIASES = (
    "gen_ai.completion.0.tool_calls.0.name",      # OpenLLMetry before 0.55
    "llm.output_messages.0.message.tool_calls.0.tool_call.function.name",  # OpenInference
    "ai.response.toolCalls",                      # Vercel legacy
)
# Every attribute that carries message content, prompts, tool arguments or results, or retrieved
# documents, in any dialect: none may ever become a label (config refuses a dimension reading one),
# and the tests feed them to check that none reaches /metrics or a log line.
INPUT_MESSAGES = "gen_ai.input.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
CONTENT_ATTRIBUTES = frozenset({
    INPUT_MESSAGES, OUTPUT_MESSAGES, SYSTEM_INSTRUCTIONS, OPENINFERENCE_OUTPUT_VALUE,
    *TOOL_CALL_RESULT_ALIASES, *COMPLETION_TEXT_ALIASES, *COMPLETION_TOOL_CALL_ALIASES,
    "gen_ai.tool.call.arguments", "gen_ai.tool.definitions",
    "gen_ai.prompt", "gen_ai.completion",                       # deprecated semconv
    "input.value", "tool.parameters",                           # OpenInference
    "traceloop.entity.input",                                   # OpenLLMetry
    "ai.prompt", "ai.prompt.messages", "ai.prompt.tools", "ai.response.object", "ai.toolCall.args",
    "ai.value", "ai.values",                                    # Vercel
    "langfuse.observation.input", "langfuse.observation.output",
})
CONTENT_ATTRIBUTE_PREFIXES = (
    "gen_ai.prompt.", "gen_ai.completion.",                    # OpenLLMetry before 0.55
    "llm.input_messages.", "llm.output_messages.", "llm.prompts", "llm.prompt_template.",
    "retrieval.documents.", "embedding.embeddings.", "reranker.",  # OpenInference
)


def is_content_attribute(key: str) -> bool:
    """Whether an attribute holds what users or models said, which must never leave the exporter."""
    return key in CONTENT_ATTRIBUTES or key.startswith(CONTENT_ATTRIBUTE_PREFIXES)


# Parts of gen_ai.output.messages that make an output non-empty without text.
OUTPUT_PART_TYPE = "type"
OUTPUT_PART_CONTENT = "content"
OUTPUT_MESSAGE_PARTS = "parts"
OUTPUT_PART_TEXT_TYPES = frozenset({"text", "reasoning"})
# The part that holds the answer itself (reasoning parts are the model's working, not its answer).
OUTPUT_PART_TEXT_TYPE = "text"

# Output text and tool calls, for the deterministic output checks (content is read, never exported).
OUTPUT_TYPE_JSON = "json"
OUTPUT_PART_TOOL_CALL_TYPE = "tool_call"
OUTPUT_PART_TOOL_NAME = "name"
OUTPUT_PART_TOOL_CALL_ID = "id"
OUTPUT_PART_TOOL_ARGUMENTS = "arguments"
OUTPUT_MESSAGE_ROLE = "role"
OUTPUT_MESSAGE_FINISH_REASON = "finish_reason"
ROLE_ASSISTANT = "assistant"
# Vercel's ai.response.toolCalls is a JSON array of {toolCallType, toolCallId, toolName, args}.
VERCEL_TOOL_CALL_NAME_KEY = "toolName"

# --- Evaluation results (LLM-as-judge and other evaluators) ---------------------------------------
# The GenAI semconv event, emitted on (or parented to) the span of the operation it evaluates.
EVALUATION_RESULT_EVENT = "gen_ai.evaluation.result"
EVALUATION_NAME = "gen_ai.evaluation.name"
EVALUATION_SCORE_VALUE_ALIASES = (
    "gen_ai.evaluation.score.value",
    "gen_ai.evaluation.score",                    # early drafts of the evaluation event (Strands)
)
EVALUATION_SCORE_LABEL = "gen_ai.evaluation.score.label"
EVALUATION_EXPLANATION = "gen_ai.evaluation.explanation"

# --- Dimensions (defaults of the exporter config; users configure their own) --------------------
DEFAULT_USER_TIER_ATTRIBUTES = (
    "user.tier",
    "app.user_tier",
    "traceloop.association.properties.user_tier",
    "ai.telemetry.metadata.userTier",
)
DEFAULT_FEATURE_ATTRIBUTES = (
    "app.feature",
    "feature",
    "traceloop.association.properties.feature",
    "ai.telemetry.metadata.feature",
)

# --- What the demo workload writes: the current semconv spelling of each concept ----------------
INPUT_TOKENS = INPUT_TOKENS_ALIASES[0]
OUTPUT_TOKENS = OUTPUT_TOKENS_ALIASES[0]
CACHE_READ_TOKENS = CACHE_READ_TOKENS_ALIASES[0]
CACHE_WRITE_TOKENS = CACHE_WRITE_TOKENS_ALIASES[0]
FINISH_REASONS = FINISH_REASONS_ALIASES[0]
TIME_TO_FIRST_CHUNK = TIME_TO_FIRST_CHUNK_ALIASES[0]
AGENT_NAME = AGENT_NAME_ALIASES[0]
TOOL_NAME = TOOL_NAME_ALIASES[0]
TOOL_CALL_RESULT = TOOL_CALL_RESULT_ALIASES[0]
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_TYPE = "gen_ai.tool.type"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_STREAM = "gen_ai.request.stream"
DATA_SOURCE_ID = "gen_ai.data_source.id"
OP_SEARCH_MEMORY = "search_memory"
# Baggage keys (and span attributes) for who and what a run serves: the first default dimension names.
USER_TIER = DEFAULT_USER_TIER_ATTRIBUTES[0]
APP_FEATURE = DEFAULT_FEATURE_ATTRIBUTES[0]


def metric_attribute_keys() -> frozenset[str]:
    """Every span attribute key normalize reads, so a receiver can skip all others unconverted."""
    keys: set[str] = {
        OPERATION_NAME, OPENINFERENCE_SPAN_KIND, TRACELOOP_SPAN_KIND, TRACELOOP_LLM_REQUEST_TYPE,
        VERCEL_OPERATION_ID, LANGFUSE_OBSERVATION_TYPE, LANGFUSE_USAGE_DETAILS, STRUCTURED_OUTPUT_SCHEMA,
        ERROR_TYPE, OUTPUT_MESSAGES, OPENINFERENCE_OUTPUT_VALUE, OPENINFERENCE_INVOCATION_PARAMETERS,
        EXCEPTION_TYPE, EVALUATION_NAME, EVALUATION_SCORE_LABEL,
    }
    for group in (
        PROVIDER_ALIASES, MODEL_ALIASES, INPUT_TOKENS_ALIASES, OUTPUT_TOKENS_ALIASES,
        TOTAL_TOKENS_ALIASES, CACHE_READ_TOKENS_ALIASES, CACHE_WRITE_TOKENS_ALIASES,
        REASONING_TOKENS_ALIASES, FINISH_REASONS_ALIASES, TIME_TO_FIRST_CHUNK_ALIASES,
        TIME_TO_FIRST_CHUNK_MS_ALIASES, AGENT_NAME_ALIASES, TOOL_NAME_ALIASES,
        TOOL_CALL_RESULT_ALIASES, COMPLETION_TEXT_ALIASES, COMPLETION_TOOL_CALL_ALIASES,
        EVALUATION_SCORE_VALUE_ALIASES, OUTPUT_TYPE_ALIASES,
    ):
        keys.update(group)
    return frozenset(keys)
