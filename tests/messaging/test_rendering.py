"""Templates are untrusted code: validated at save (syntax, the purpose's variables, the sandbox)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from messaging import rendering
from messaging.models import MessageTemplate
from messaging.services.templates import validate_template

pytestmark = pytest.mark.django_db


def _email(tenant, **fields) -> MessageTemplate:
    base = {"key": "t", "name": "T", "purpose": "offer_sent", "channel": "email", "subject": "Hi",
            "html_body": "<p>Hi</p>"}  # fmt: skip
    base.update(fields)
    return MessageTemplate(tenant=tenant, **base)


def test_an_unknown_variable_is_named_with_what_the_purpose_offers(world_a):
    with pytest.raises(ValidationError) as caught:
        validate_template(_email(world_a.tenant, html_body="<p>{{ offer.tier }} {{ discount_code }}</p>"))
    message = caught.value.message_dict["html_body"][0]
    assert "Unknown variable discount_code" in message
    assert "offer" in message and "similar_customers" in message


def test_a_variable_of_another_purpose_is_refused(world_a):
    with pytest.raises(ValidationError) as caught:
        validate_template(_email(world_a.tenant, purpose="receipt", subject="{{ offer.tier }}"))
    assert "Unknown variable offer" in caught.value.message_dict["subject"][0]


def test_a_syntax_error_names_its_line(world_a):
    with pytest.raises(ValidationError) as caught:
        validate_template(_email(world_a.tenant, html_body="<p>ok</p>\n{% if offer %}<p>never closed</p>"))
    assert caught.value.message_dict["html_body"][0].startswith("Syntax error on line 2")


@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ contact.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ evidence.append('x') }}",
    ],
)
def test_sandbox_escapes_are_refused_at_save(world_a, escape):
    with pytest.raises(ValidationError) as caught:
        validate_template(_email(world_a.tenant, html_body=f"<p>{escape}</p>"))
    assert caught.value.message_dict["html_body"]


def test_sandbox_refuses_at_render_time_too():
    from jinja2.sandbox import SecurityError

    with pytest.raises(SecurityError):
        rendering.render("{{ ''.__class__.__mro__[1].__subclasses__() }}", {}, html=True)


def test_html_is_autoescaped_and_text_is_not():
    assert rendering.render("{{ x }}", {"x": "<b>&"}, html=True) == "&lt;b&gt;&amp;"
    assert rendering.render("{{ x }}", {"x": "<b>&"}, html=False) == "<b>&"


def test_each_channel_needs_its_parts(world_a):
    with pytest.raises(ValidationError) as caught:
        validate_template(_email(world_a.tenant, subject="", html_body=""))
    assert set(caught.value.message_dict) == {"subject", "html_body"}
    prompt = MessageTemplate(tenant=world_a.tenant, key="p", name="P", purpose="feature_gate", channel="in_app",
                             title="T", body="B", placement="")  # fmt: skip
    with pytest.raises(ValidationError) as caught:
        validate_template(prompt)
    assert set(caught.value.message_dict) == {"placement"}


def test_a_prompt_link_must_be_https(world_a):
    prompt = MessageTemplate(tenant=world_a.tenant, key="p", name="P", purpose="feature_gate", channel="in_app",
                             title="T", body="B", placement="gate", cta_label="Go",
                             cta_url="javascript:alert(1)")  # fmt: skip
    with pytest.raises(ValidationError) as caught:
        validate_template(prompt)
    assert "https://" in caught.value.message_dict["cta_url"][0]


def test_plain_text_comes_from_the_html_with_links_and_list_items():
    text = rendering.html_to_text(
        "<style>p{}</style><p>Hi <b>Jo</b>,</p><ul><li>one</li><li>two</li></ul>"
        '<p><a href="https://x.test/a?b=1&amp;c=2">See it</a></p>'
    )
    assert text == "Hi Jo,\n\n- one\n- two\n\nSee it (https://x.test/a?b=1&c=2)\n"
