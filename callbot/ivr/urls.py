"""Public URLs of the IVR app: uploaded prompts, fetched by Graph."""

from __future__ import annotations

from django.urls import path

from callbot.ivr import views

urlpatterns = [
    path("ivr/prompts/<slug:name>.wav", views.prompt_audio, name="ivr-prompt"),
]
