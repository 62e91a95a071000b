from django.urls import path

from agents import views

app_name = "agents"

urlpatterns = [
    path("studio/agents/", views.agent_list, name="list"),
    path("studio/agents/<int:agent_id>/", views.agent_detail, name="detail"),
    path("studio/agents/<int:agent_id>/actions/", views.agent_actions, name="actions"),
    path("studio/agents/<int:agent_id>/actions/<int:action_id>/", views.agent_action_edit, name="action_edit"),
    path("studio/agents/<int:agent_id>/actions/<int:action_id>/delete/", views.agent_action_delete,
         name="action_delete"),
    path("studio/agents/<int:agent_id>/versions/", views.agent_versions, name="versions"),
    path("studio/agents/<int:agent_id>/versions/<int:version_id>/", views.agent_version_detail, name="version"),
    path("studio/agents/<int:agent_id>/versions/<int:version_id>/restore/", views.agent_version_restore,
         name="restore"),
    path("studio/agents/<int:agent_id>/publish/", views.agent_publish, name="publish"),
    path("studio/agents/<int:agent_id>/tests/", views.agent_tests, name="tests"),
    path("studio/agents/<int:agent_id>/tests/new/", views.test_scenario_edit, name="test_new"),
    path("studio/agents/<int:agent_id>/tests/<int:scenario_id>/", views.test_scenario_edit, name="test_edit"),
    path("studio/agents/<int:agent_id>/tests/<int:scenario_id>/delete/", views.test_scenario_delete,
         name="test_delete"),
    path("studio/agents/<int:agent_id>/tests/runs/<int:run_id>/", views.test_run_detail, name="test_run"),
    path("studio/environments/", views.environment_list, name="environments"),
    path("studio/environments/<str:kind>/", views.environment_detail, name="environment"),
    path("studio/environments/<str:kind>/secrets/", views.environment_secret_set, name="secret_set"),
    path("studio/environments/<str:kind>/secrets/<int:secret_id>/delete/", views.environment_secret_delete,
         name="secret_delete"),
    path("studio/environments/<str:kind>/variables/", views.environment_variable_set, name="variable_set"),
    path("studio/environments/<str:kind>/recording/", views.environment_recording_set, name="recording_set"),
    path("studio/environments/<str:kind>/variables/<int:variable_id>/delete/", views.environment_variable_delete,
         name="variable_delete"),
    path("studio/environments/<str:kind>/auth-connectors/", views.auth_connector_create, name="auth_create"),
    path("studio/environments/<str:kind>/auth-connectors/<int:auth_id>/", views.auth_connector_edit,
         name="auth_edit"),
    path("studio/environments/<str:kind>/auth-connectors/<int:auth_id>/delete/", views.auth_connector_delete,
         name="auth_delete"),
]
