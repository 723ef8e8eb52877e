"""SFT of a Hugging Face causal LM, whole or through LoRA adapters (peft), on a tiny randomly initialised model and a
character tokenizer built here: nothing is downloaded. Skipped when transformers (or peft, for LoRA) is missing;
``nox -s torch-hf`` installs them."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any, List

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from agentlightning.runner import LitAgentRunner  # noqa: E402
from agentlightning.testing.openai_server import OpenAITestServer  # noqa: E402
from agentlightning.tracer.otel import OtelTracer  # noqa: E402
from agentlightning.trainer import Trainer  # noqa: E402
from agentlightning.types.resources import LLM  # noqa: E402
from agentlightning_sqlite.store import SqliteLightningStore  # noqa: E402
from agentlightning_torch.policy import build_policy  # noqa: E402
from agentlightning_torch.quickstart.agent import keyword_agent  # noqa: E402
from agentlightning_torch.quickstart.task import category_of, make_datasets  # noqa: E402
from agentlightning_torch.sft import SFT, apply_lora, examples_from_spans, sft_step  # noqa: E402

LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}>{% endif %}"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: Any) -> str:
    """A local model directory: a 2-layer Llama with 32-wide states over a character vocabulary."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    specials = ["<pad>", "<eos>", "<unk>"]
    vocab = {token: i for i, token in enumerate([*specials, *string.ascii_lowercase, *"ABCD", "\n", ">", " "])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=64, pad_token_id=0, eos_token_id=1, bos_token_id=1,
        initializer_range=0.2,  # the frozen output layer of a LoRA run must be able to reach confident logits
    )  # fmt: skip
    model = transformers.AutoModelForCausalLM.from_config(config)
    directory = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def _example(policy: Any, keyword: str) -> Any:
    [record] = [((tuple(policy.encode_chat([{"role": "user", "content": keyword}]))), None)]
    answer = tuple([*policy.tokenizer.encode(category_of(keyword), add_special_tokens=False), policy.eos_token_id])
    return record[0], answer


def test_full_fine_tuning_of_a_hf_model_learns_the_answers(model_dir: str) -> None:
    policy = build_policy(model_path=model_dir)
    assert policy.hf
    batch = [_example(policy, k) for k in ("abc", "gij", "nop", "tuv")]
    optimizer = torch.optim.Adam(policy.model.parameters(), lr=1e-2)
    losses = [sft_step(policy, optimizer, batch) for _ in range(40)]
    assert losses[-1] < losses[0] / 4
    [[sample]] = policy.generate([list(batch[2][0])], max_new_tokens=3, temperature=0.0)
    assert policy.decode(sample.token_ids) == "C"


def test_lora_trains_only_the_adapters(model_dir: str) -> None:
    pytest.importorskip("peft")
    policy = build_policy(model_path=model_dir)
    base = {k: v.clone() for k, v in policy.model.state_dict().items()}
    apply_lora(policy, {"r": 8, "lora_alpha": 16, "target_modules": LINEAR})
    trainable = [name for name, p in policy.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    batch = [_example(policy, k) for k in ("abc", "gij", "nop", "tuv")]
    params = [p for p in policy.model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=3e-2)
    losses = [sft_step(policy, optimizer, batch) for _ in range(40)]
    assert losses[-1] < losses[0] * 0.6
    merged = policy.model.get_base_model().state_dict()
    unchanged = [k for k in base if k in merged and "lora_" not in k]
    assert unchanged and all(torch.equal(base[k], merged[k]) for k in unchanged)


def test_teacher_messages_are_re_encoded_with_the_hf_tokenizer(model_dir: str) -> None:
    from agentlightning.testing.store import make_span

    policy = build_policy(model_path=model_dir)
    span = make_span(
        "ro-1", "at-1", 1, name="openai.chat.completion",
        attributes={"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "nop",
                    "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "C"},
    )  # fmt: skip
    assert examples_from_spans(policy, [span], own=False) == [_example(policy, "nop")]


def test_sft_run_with_lora_through_the_trainer(model_dir: str, tmp_path: Path) -> None:
    pytest.importorskip("peft")
    train, val = make_datasets(n_train=24, n_val=8, seed=1, same_group=True)
    reports: List[Any] = []
    with OpenAITestServer(lambda request: category_of(str(request["messages"][-1]["content"]))) as teacher:
        algorithm = SFT(
            model=model_dir,
            lora={"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
            teacher={"main_llm": LLM(endpoint=teacher.base_url, model="teacher")},
            rounds=1,
            epochs=2,
            on_round=reports.append,
        )
        store = SqliteLightningStore(str(tmp_path / "store.db"))
        Trainer(
            algorithm=algorithm, store=store, runner=LitAgentRunner(tracer=OtelTracer(), max_concurrency=8),
            strategy="inprocess", progress=False,
        ).fit(keyword_agent, train, val_dataset=val)  # fmt: skip
    assert [r.kind for r in reports] == ["val", "train", "val"]
    assert reports[1].kept == reports[1].examples == len(train)  # a perfect teacher: every rollout kept
    assert reports[1].loss is not None and algorithm.policy_version == 2
    assert reports[2].rollouts == len(val)
